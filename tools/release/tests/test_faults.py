"""Faults and bad input against the real registry: it dies mid-push, it restarts
before a promote, a blob goes missing, wrong credentials, bad digests, dirty images.
Each fault leaves every reference where it was, and says so in one line."""

import base64
import glob
import json
import os
import subprocess
import threading
import time

import pytest

from tools.release import registry as registry_lib, settings as settings_lib
from tools.release.tests import support

REPOSITORY = "faults/digits"


@pytest.fixture(name="env", scope="module")
def fixture_env(registry):
    """The release job environment of this module's repository."""
    return registry.env(REPOSITORY)


@pytest.fixture(name="client", scope="module")
def fixture_client(env):
    """A registry client, to read references behind the CLI's back."""
    return registry_lib.Client(settings_lib.load(env))


@pytest.fixture(name="validated", scope="module")
def fixture_validated(registry, images, env):
    """The first image published, validated for real, promoted to stable (in-process
    capture of stdout is not available at module scope: the CLI is called directly)."""
    del registry
    from tools.release import cli  # pylint: disable=import-outside-toplevel
    with support._environ(env):  # pylint: disable=protected-access
        assert cli.main(["publish", "--archive", images["first"]], environ=env) == 0
        digest = images["digests"]["first"]
        assert cli.main([*support.RELEASE_SPEC, "validate", "--digest", digest], environ=env) == 0
        assert cli.main(["promote", "--digest", digest], environ=env) == 0
    return digest


def no_traceback(err):
    """The error is one line (after any progress lines), with no stack trace."""
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("release: "), err


def test_registry_killed_mid_push_leaves_no_candidate_and_a_second_publish_completes(
        capsys, registry, images, client):
    env = registry.env("midpush/digits")
    uploads = os.path.join(registry.process.storage, "docker", "registry", "v2",
                           "repositories", "midpush", "digits", "_uploads")
    killed = threading.Event()

    def kill_once_blobs_flow():
        # The worst moment: some blob data is in, the manifest is not.
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if glob.glob(os.path.join(uploads, "*", "data")):
                registry.process.kill()
                killed.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_once_blobs_flow)
    watcher.start()
    try:
        status, out, err = support.run_cli(capsys, env, "publish", "--archive",
                                           images["first"])
    finally:
        watcher.join()
        registry.start()
    assert killed.is_set(), "the registry was never caught mid-upload"
    assert status == 1, out + err
    assert f"registry {registry.address} is unavailable" in err
    no_traceback(err)
    midpush = registry_lib.Client(settings_lib.load(env))
    sha = images["report"]["labels"]["org.opencontainers.image.revision"]
    assert midpush.resolve(f"candidate-{sha[:12]}") is None
    status, out, err = support.run_cli(capsys, env, "publish", "--archive", images["first"])
    assert status == 0, err
    assert midpush.resolve(f"candidate-{sha[:12]}") == images["digests"]["first"]
    del client


def test_promote_waits_out_a_registry_restart(capsys, registry, env, client, validated):
    env = dict(env, MODELSHIP_REGISTRY_RETRIES="6")  # backoff 0.2 s doubling: 12 s in all
    registry.process.stop()
    restarter = threading.Timer(1.0, registry.start)
    restarter.start()
    try:
        status, out, err = support.run_cli(capsys, env, "promote", "--digest", validated,
                                           "--tag", "restarted")
    finally:
        restarter.join()
    assert status == 0, err
    assert out.strip().endswith(f":restarted -> {validated}")
    assert client.resolve("restarted") == validated


def test_promote_with_the_registry_down_fails_clearly_and_moves_nothing(
        capsys, registry, env, client, validated):
    before = client.resolve("stable")
    registry.process.stop()
    try:
        status, _, err = support.run_cli(capsys, env, "promote", "--digest", validated,
                                         "--tag", "down")
    finally:
        registry.start()
    assert status == 1
    assert f"registry {registry.address} is unavailable" in err
    no_traceback(err)
    assert client.resolve("down") is None
    assert client.resolve("stable") == before


def test_registry_killed_between_the_blob_check_and_the_tag_write_moves_nothing(
        capsys, registry, env, client, validated, monkeypatch):
    from tools.release import skopeo  # pylint: disable=import-outside-toplevel
    real_copy = skopeo.copy

    def kill_then_copy(*args, **kwargs):
        # The worst moment of a promote: blobs checked, the tag not yet written.
        registry.process.kill()
        return real_copy(*args, **kwargs)

    before = client.resolve("stable")
    monkeypatch.setattr(skopeo, "copy", kill_then_copy)
    try:
        status, _, err = support.run_cli(capsys, env, "promote", "--digest", validated,
                                         "--tag", "worst-moment", "--tag", "stable")
    finally:
        registry.start()
    assert status == 1
    assert f"registry {registry.address} is unavailable" in err
    no_traceback(err)
    assert client.resolve("worst-moment") is None
    assert client.resolve("stable") == before


def test_promote_refuses_an_image_with_a_missing_blob_and_moves_nothing(
        capsys, registry, env, client, validated):
    manifest = json.loads(client.manifest(validated)[1])
    layer = manifest["layers"][-1]["digest"].split(":", 1)[1]
    link = os.path.join(registry.process.storage, "docker", "registry", "v2", "repositories",
                        *REPOSITORY.split("/"), "_layers", "sha256", layer, "link")
    with open(link, encoding="utf-8") as text:
        saved = text.read()
    os.unlink(link)
    try:
        status, _, err = support.run_cli(capsys, env, "promote", "--digest", validated,
                                         "--tag", "incomplete")
    finally:
        with open(link, "w", encoding="utf-8") as out:
            out.write(saved)
    assert status == 1
    assert "is incomplete" in err and layer[:12] in err and "incomplete was not moved" in err
    assert client.resolve("incomplete") is None


def test_wrong_credentials_name_the_registry_and_never_show_the_password(
        capsys, registry, images):
    env = registry.env(REPOSITORY, MODELSHIP_REGISTRY_PASSWORD="not-the-password-42")
    status, out, err = support.run_cli(capsys, env, "publish", "--archive", images["first"])
    assert status == 1
    assert f"registry {registry.address} refused the credentials given" in err
    no_traceback(err)
    assert "not-the-password-42" not in out + err


def test_credentials_stay_out_of_the_argv_and_environment_of_every_child(
        capsys, registry, images, client, validated):
    del validated
    env = registry.env(REPOSITORY)
    seen, stop = [], threading.Event()

    def watch_processes():
        while not stop.is_set():
            for proc in glob.glob("/proc/[0-9]*"):
                try:
                    with open(os.path.join(proc, "cmdline"), "rb") as text:
                        argv = text.read()
                    if b"skopeo" not in argv:
                        continue
                    with open(os.path.join(proc, "environ"), "rb") as text:
                        seen.append((argv, text.read()))
                except OSError:
                    continue
            time.sleep(0.002)

    watcher = threading.Thread(target=watch_processes)
    watcher.start()
    try:
        status, out, err = support.run_cli(capsys, env, "publish", "--archive",
                                           images["first"])
    finally:
        stop.set()
        watcher.join()
    assert status == 0, err
    assert any(b"copy" in argv for argv, _ in seen), "never saw skopeo run"
    secret = registry.password.encode()
    assert not [argv for argv, environ in seen if secret in argv or secret in environ]
    assert registry.password not in out + err
    assert client.resolve("stable")


def test_an_auth_file_works(capsys, registry, images, tmp_path, client):
    auth = tmp_path / "auth.json"
    token = base64.b64encode(f"{support.USER}:{registry.password}".encode())
    auth.write_text(json.dumps({"auths": {registry.address: {"auth": token.decode()}}}))
    env = registry.env(REPOSITORY, MODELSHIP_REGISTRY_AUTH_FILE=str(auth))
    del env["MODELSHIP_REGISTRY_USER"], env["MODELSHIP_REGISTRY_PASSWORD"]
    status, out, err = support.run_cli(capsys, env, "publish", "--archive", images["first"])
    assert status == 0, err
    assert out.splitlines()[-1] == images["digests"]["first"]
    assert client.resolve("candidate-" + images["report"]["labels"][
        "org.opencontainers.image.revision"][:12]) == images["digests"]["first"]


def test_promote_refuses_a_tag_a_digest_that_does_not_exist_and_an_unvalidated_one(
        capsys, env, client, images, validated):
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", "stable")
    assert status == 2 and "is not a digest" in err
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", "v1:latest")
    assert status == 2 and "looks like a tag" in err
    missing = "sha256:" + "ab" * 32
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", missing)
    assert status == 1 and f"{missing} does not exist" in err
    no_traceback(err)
    status, _, err = support.run_cli(capsys, env, "publish", "--archive", images["second"])
    assert status == 0, err
    status, _, err = support.run_cli(capsys, env, "promote", "--digest",
                                     images["digests"]["second"])
    assert status == 1 and "has not passed validation" in err
    assert client.resolve("stable") == validated


def test_publish_and_promote_refuse_an_image_built_from_a_dirty_tree(
        capsys, registry, env, client, images, validated):
    status, _, err = support.run_cli(capsys, env, "publish", "--archive", images["dirty"])
    assert status == 1 and "built from a dirty tree" in err, err
    no_traceback(err)
    # Pushed behind the tool's back, it is still refused at promote.
    dirty = images["digests"]["dirty"]
    subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                    "--dest-creds", f"{support.USER}:{registry.password}",
                    f"oci-archive:{images['dirty']}",
                    f"docker://{registry.address}/{REPOSITORY}:sneaked-in"], check=True)
    assert client.resolve("sneaked-in") == dirty
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", dirty)
    assert status == 1 and "built from a dirty tree" in err, err
    assert client.resolve("stable") == validated


def test_bad_settings_are_listed_together(capsys, registry):
    env = registry.env("Not/Valid", MODELSHIP_REGISTRY="bad host", MODELSHIP_REGISTRY_TLS="yes")
    status, _, err = support.run_cli(capsys, env, "history")
    assert status == 2
    for name in ("'bad host'", "'Not/Valid'", "MODELSHIP_REGISTRY_TLS"):
        assert name in err


def test_an_image_outside_the_operating_point_fails_validation_and_is_not_promoted(
        capsys, registry, env, client, images, validated):
    del registry
    # pylint: disable-next=import-outside-toplevel
    from tools.release import gates, imagespec, release
    second = images["digests"]["second"]
    status, _, err = support.run_cli(capsys, env, "publish", "--archive", images["second"])
    assert status == 0, err
    # The real gates on a real container, held to a memory bound no process meets (and a
    # latency bound a busy machine meets too: only the memory gate is to fail).
    spec = imagespec.load(support.RELEASE_SPEC[1])
    bounds = dict(gates.load_operating_point(
        imagespec.local(spec, spec.operating_point, "operating_point")), memory_mib=1,
        tolerance=0, latency_p95_ms=10_000)
    with support._environ(env):  # pylint: disable=protected-access
        passed, checks = release.Releases(settings_lib.load(env)).validate(
            second, run_gates=lambda s, p: gates.run_all(s, p, spec, bounds=bounds))
    assert not passed
    assert [c.name for c in checks if not c.ok] == ["memory <= 1 MiB (+0%)"]
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", second)
    assert status == 1 and "has not passed validation" in err
    assert client.resolve("stable") == validated
    status, out, _ = support.run_cli(capsys, env, "history", "--json")
    last = json.loads(out.splitlines()[-1])
    assert (last["event"], last["digest"], last["result"]) == ("validate", second, "failed")
    assert last["failed"] == ["operating point: memory <= 1 MiB (+0%)"]
