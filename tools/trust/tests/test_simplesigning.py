"""containers' simple signing with the real skopeo and gpg, a real docker-registry, and
the signatures read through a real nginx (the lookaside web server).

Every refusal is checked on both verifications (`verify`: manifest and signatures
only; `verify_policy`: skopeo copy under a policy.json, as a container engine does),
and every message must name the digest and the reason.
"""

import collections
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import secrets
import sys
import threading
import time

import pytest

from tools.release import registry as registry_lib
from tools.release import server
from tools.release import settings as settings_lib
from tools.release import skopeo as release_skopeo
from tools.release.tests import small_images
from tools.trust import simplesigning
from tools.trust.errors import KeyFileError, TrustError
from tools.trust.tests.lookaside_server import Lookaside

VERIFIERS = pytest.mark.parametrize("check", [simplesigning.verify,
                                              simplesigning.verify_policy],
                                    ids=["verify", "verify_policy"])

Key = collections.namedtuple("Key", "fingerprint secret public_file passphrase")


def push_image(client, seed, tag=None):
    """Pushes a small one-layer image whose content depends on `seed`; its digest."""
    return small_images.push(client, [{"seed.txt": seed.encode()}], tag=tag)


# --- fixtures -----------------------------------------------------------------------

@pytest.fixture(name="registry", scope="session")
def fixture_registry(tmp_path_factory):
    """A docker-registry without authentication on a free loopback port."""
    process = server.Registry(str(tmp_path_factory.mktemp("registry"))).start()
    yield process
    process.stop()


def _make_key(folder, name, passphrase):
    with simplesigning.Keyring() as keyring:
        fpr = keyring.generate(f"{name} <{name}@example.invalid>", passphrase=passphrase)
        public_file = os.path.join(folder, f"{name}.pub.asc")
        with open(public_file, "wb") as out:
            out.write(keyring.export_public(fpr))
        return Key(fpr, keyring.export_secret(fpr), public_file, passphrase)


@pytest.fixture(name="keys", scope="session")
def fixture_keys(tmp_path_factory):
    """The release key and another one (each with a passphrase), made once."""
    folder = str(tmp_path_factory.mktemp("keys"))
    return {"release": _make_key(folder, "release", "correct horse " + os.urandom(6).hex()),
            "other": _make_key(folder, "other", "battery staple " + os.urandom(6).hex())}


@pytest.fixture(name="site")
def fixture_site(tmp_path, registry):
    """A staging folder skopeo writes to, nginx serving the uploaded copy, and the
    registries.d pointing at both."""
    staging = str(tmp_path / "staging")
    lookaside = Lookaside(str(tmp_path / "nginx"), str(tmp_path / "www")).start()
    registries_d = simplesigning.write_registries_d(
        str(tmp_path / "registries.d"), registry.address, lookaside.url, staging_dir=staging)
    yield {"staging": staging, "lookaside": lookaside, "registries_d": registries_d,
           "tmp": tmp_path}
    lookaside.stop()


@pytest.fixture(name="repo")
def fixture_repo(registry, request):
    """A fresh repository per test with one small image pushed as :v1."""
    name = "trust/gpg-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    client = registry_lib.Client(settings_lib.load(
        {"MODELSHIP_REGISTRY": registry.address, "MODELSHIP_REPOSITORY": name}))
    digest = push_image(client, name, tag="v1")
    return {"name": name, "client": client, "digest": digest, "registry": registry.address}


def upload(site):
    """What the CI job does after signing: copy the staging folder to the web server."""
    shutil.copytree(site["staging"], site["lookaside"].root, dirs_exist_ok=True)


def sign(site, repo, key, repository=None, digest=None, **extra):
    """Signs as the release job does: a fresh keyring, the armored key, its passphrase."""
    with simplesigning.Keyring() as keyring:
        fpr = keyring.import_secret_key(key.secret, key.passphrase)
        return simplesigning.sign(
            registry=repo["registry"], repository=repository or repo["name"],
            digest=digest or repo["digest"], fingerprint=fpr, keyring=keyring,
            registries_d=site["registries_d"], tls=False, **extra)


def run_check(check, site, repo, key, digest=None, **extra):
    """verify or verify_policy of the repository's image with `key`'s public key."""
    return check(registry=repo["registry"], repository=repo["name"],
                 digest=digest or repo["digest"], public_key_file=key.public_file,
                 registries_d=site["registries_d"], tls=False, **extra)


def registry_digest(repo, reference):
    """The digest the registry serves for a tag or digest (read with skopeo)."""
    return subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
         f"docker://{repo['registry']}/{repo['name']}{reference}"],
        check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


# --- accepted ---------------------------------------------------------------------------

@VERIFIERS
def test_signed_image_verifies_through_nginx_and_keeps_its_digest(site, repo, keys, check):
    written = sign(site, repo, keys["release"])
    hexdigest = repo["digest"].split(":")[1]
    assert [os.path.relpath(p, site["staging"]) for p in written] == \
        [f"{repo['name']}@sha256={hexdigest}/signature-1"]
    upload(site)
    run_check(check, site, repo, keys["release"])
    # The signature was read through nginx, not from the staging folder.
    assert f"/{repo['name']}@sha256={hexdigest}/signature-1 HTTP/1.1\" 200" \
        in site["lookaside"].requests()
    assert registry_digest(repo, f"@{repo['digest']}") == repo["digest"]
    assert registry_digest(repo, ":v1") == repo["digest"]


def test_signing_again_adds_a_signature_and_keeps_the_first(site, repo, keys):
    sign(site, repo, keys["other"])
    upload(site)
    written = sign(site, repo, keys["release"])
    # skopeo re-writes the lookaside's signatures with the new one after them.
    assert [os.path.basename(p) for p in written] == ["signature-1", "signature-2"]
    upload(site)
    for key in ("release", "other"):
        simplesigning.verify(registry=repo["registry"], repository=repo["name"],
                             digest=repo["digest"], public_key_file=keys[key].public_file,
                             registries_d=site["registries_d"], tls=False)


@VERIFIERS
def test_signature_for_the_promoted_repository_passes_exact_identity(site, repo, keys, check):
    sign(site, repo, keys["release"])
    upload(site)
    run_check(check, site, repo, keys["release"],
              identity=f"{repo['registry']}/{repo['name']}")


@VERIFIERS
def test_tag_identity_signature_verifies(site, repo, keys, check):
    sign(site, repo, keys["release"], tag="v1")
    upload(site)
    run_check(check, site, repo, keys["release"])


@VERIFIERS
def test_a_key_file_of_two_keys_accepts_either(site, repo, keys, check, tmp_path):
    # Rotation: clients hold the old and the new public key in one file for a while.
    both = tmp_path / "both.pub.asc"
    both.write_bytes(b"".join(open_bytes(keys[k].public_file) for k in ("release", "other")))
    sign(site, repo, keys["other"])
    upload(site)
    run_check(check, site, repo, keys["release"]._replace(public_file=str(both)))


# --- refused ----------------------------------------------------------------------------

def assert_refused(excinfo, digest, *reasons):
    """The message names the digest and one of the reasons."""
    message = str(excinfo.value)
    print(message)  # shown by pytest -rP: what a release job's log says
    assert digest in message, message
    assert any(reason.lower() in message.lower() for reason in reasons), message
    assert "Traceback" not in message


@VERIFIERS
def test_unsigned_digest_is_refused(site, repo, keys, check):
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"])
    assert_refused(excinfo, repo["digest"], "no signature")


@VERIFIERS
def test_signature_by_another_key_is_refused(site, repo, keys, check):
    sign(site, repo, keys["other"])
    upload(site)
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"])
    assert_refused(excinfo, repo["digest"], "Invalid GPG signature", "another key")


@VERIFIERS
def test_signature_made_for_another_repository_is_refused(site, repo, keys, check):
    # The same image in a candidates repository, signed there; its signature is then
    # replayed into the production repository's lookaside folder.
    candidates = repo["name"] + "-candidates"
    client = registry_lib.Client(settings_lib.load(
        {"MODELSHIP_REGISTRY": repo["registry"], "MODELSHIP_REPOSITORY": candidates}))
    assert push_image(client, repo["name"]) == repo["digest"]
    [written] = sign(site, repo, keys["release"], repository=candidates)
    folder = os.path.join(site["lookaside"].root,
                          f"{repo['name']}@{repo['digest'].replace(':', '=')}")
    os.makedirs(folder)
    shutil.copy(written, os.path.join(folder, "signature-1"))
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"])
    assert_refused(excinfo, repo["digest"], "another image identity", "made for")


@VERIFIERS
def test_exact_identity_refuses_the_image_own_repository_signature(site, repo, keys, check):
    sign(site, repo, keys["release"])
    upload(site)
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"],
                  identity=f"{repo['registry']}/production/app")
    assert_refused(excinfo, repo["digest"], "another image identity", "made for")


@VERIFIERS
def test_tag_moved_after_signing_new_digest_is_refused(site, repo, keys, check):
    sign(site, repo, keys["release"])
    upload(site)
    moved = push_image(repo["client"], "someone else's", tag="v1")
    assert registry_digest(repo, ":v1") == moved != repo["digest"]
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"], digest=moved)
    assert_refused(excinfo, moved, "no signature")
    run_check(check, site, repo, keys["release"])  # the signed digest still verifies


@VERIFIERS
def test_tampered_signature_is_refused(site, repo, keys, check):
    [written] = sign(site, repo, keys["release"])
    upload(site)
    served = os.path.join(site["lookaside"].root, os.path.relpath(written, site["staging"]))
    with open(served, "rb") as data:
        signature = bytearray(data.read())
    signature[len(signature) // 2] ^= 0x01
    with open(served, "wb") as out:
        out.write(signature)
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"])
    assert_refused(excinfo, repo["digest"], "tampered", "Invalid GPG signature", "corrupt")


@VERIFIERS
def test_signature_of_another_digest_is_refused(site, repo, keys, check):
    # A valid signature of one image copied into another image's folder.
    other = push_image(repo["client"], "other image")
    [written] = sign(site, repo, keys["release"])
    folder = os.path.join(site["lookaside"].root, f"{repo['name']}@{other.replace(':', '=')}")
    os.makedirs(folder)
    shutil.copy(written, os.path.join(folder, "signature-1"))
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"], digest=other)
    assert_refused(excinfo, other, "another manifest digest", "does not match", "invalid")


@VERIFIERS
def test_lookaside_down_is_a_clear_error_not_a_hang(site, repo, keys, check):
    sign(site, repo, keys["release"])
    upload(site)
    site["lookaside"].stop()
    start = time.monotonic()
    with pytest.raises(TrustError) as excinfo:
        run_check(check, site, repo, keys["release"])
    assert time.monotonic() - start < 30
    assert_refused(excinfo, repo["digest"], "unreachable", "connection refused")


@VERIFIERS
def test_lookaside_that_never_answers_times_out(site, repo, keys, check, monkeypatch):
    # A server that accepts connections (the kernel's backlog) and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        simplesigning.write_registries_d(site["registries_d"], repo["registry"],
                                         f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setattr(simplesigning, "FETCH_TIMEOUT_S", 1)
        start = time.monotonic()
        with pytest.raises(TrustError) as excinfo:
            run_check(check, site, repo, keys["release"])
        assert time.monotonic() - start < 15
    assert_refused(excinfo, repo["digest"], "unreachable")


def test_a_tag_is_refused_as_digest(site, repo, keys):
    with pytest.raises(TrustError, match="not an image digest: 'v1'"):
        run_check(simplesigning.verify, site, repo, keys["release"], digest="v1")


# --- with registry authentication -------------------------------------------------------

def test_sign_and_verify_with_an_auth_file(tmp_path, keys):
    (tmp_path / "registry").mkdir()
    password = secrets.token_urlsafe(18)
    htpasswd = str(tmp_path / "registry" / "htpasswd")
    server.add_user(htpasswd, "signer", password)
    registry = server.Registry(str(tmp_path / "registry"), htpasswd=htpasswd).start()
    try:
        settings = settings_lib.load({
            "MODELSHIP_REGISTRY": registry.address, "MODELSHIP_REPOSITORY": "trust/authed",
            "MODELSHIP_REGISTRY_USER": "signer", "MODELSHIP_REGISTRY_PASSWORD": password})
        digest = push_image(registry_lib.Client(settings), "authed")
        staging = str(tmp_path / "sigs")
        registries_d = simplesigning.write_registries_d(
            str(tmp_path / "registries.d"), registry.address, "file://" + staging,
            staging_dir=staging)
        common = {"registry": registry.address, "repository": "trust/authed",
                  "digest": digest, "registries_d": registries_d, "tls": False}
        with release_skopeo.auth_file(settings) as auth:
            with simplesigning.Keyring() as keyring:
                fpr = keyring.import_secret_key(keys["release"].secret,
                                                keys["release"].passphrase)
                simplesigning.sign(fingerprint=fpr, keyring=keyring, auth_file=auth, **common)
            simplesigning.verify(public_key_file=keys["release"].public_file, auth_file=auth,
                                 **common)
        with pytest.raises(TrustError) as excinfo:  # no credentials: the registry says no
            simplesigning.verify(public_key_file=keys["release"].public_file, **common)
        assert digest in str(excinfo.value)
    finally:
        registry.stop()


# --- secrets ----------------------------------------------------------------------------

def test_passphrase_never_in_argv_environment_or_output(site, repo, keys, tmp_path,
                                                        monkeypatch):
    passphrase = keys["release"].passphrase
    # skopeo wrapped: every call's argv and environment are recorded, then the real one runs.
    log = tmp_path / "skopeo-calls"
    wrapper = tmp_path / "skopeo"
    wrapper.write_text(f"#!{sys.executable}\n"
                       "import os, sys\n"
                       f"with open({str(log)!r}, 'a') as out:\n"
                       "    out.write(repr(sys.argv) + repr(dict(os.environ)) + '\\n')\n"
                       f"os.execv({shutil.which('skopeo')!r}, ['skopeo'] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(simplesigning, "SKOPEO", str(wrapper))
    # And every process's command line, sampled while signing.
    seen, done = set(), threading.Event()

    def sample():
        while not done.is_set():
            seen.update(command_lines())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        written = sign(site, repo, keys["release"])
    finally:
        done.set()
        sampler.join()
    upload(site)
    simplesigning.verify(registry=repo["registry"], repository=repo["name"],
                         digest=repo["digest"], public_key_file=keys["release"].public_file,
                         registries_d=site["registries_d"], tls=False)
    calls = log.read_text()
    assert "--sign-passphrase-file" in calls and "copy" in calls
    assert passphrase not in calls
    assert any(b"skopeo" in line for line in seen)
    assert not [line for line in seen if passphrase.encode() in line]
    for path in written:
        with open(path, "rb") as data:
            assert passphrase.encode() not in data.read()


def test_wrong_passphrase_is_refused_without_showing_it(keys):
    with simplesigning.Keyring() as keyring:
        with pytest.raises(KeyFileError) as excinfo:
            keyring.import_secret_key(keys["release"].secret, "not the passphrase")
    assert "wrong passphrase" in str(excinfo.value)
    assert keys["release"].fingerprint in str(excinfo.value)
    assert "not the passphrase" not in str(excinfo.value)


def test_skopeo_needs_the_passphrase_file(site, repo, keys, monkeypatch):
    # Proof that skopeo really reads the passphrase from our file (no agent cache): without
    # it, the same signing fails.
    monkeypatch.setattr(simplesigning.Keyring, "passphrase_file", lambda self, fpr: None)
    with pytest.raises(TrustError) as excinfo:
        sign(site, repo, keys["release"])
    assert repo["digest"] in str(excinfo.value)
    assert keys["release"].passphrase not in str(excinfo.value)


def test_keyring_is_private_and_removed(keys):
    with simplesigning.Keyring() as keyring:
        home = keyring.home
        assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
        keyring.import_secret_key(keys["release"].secret, keys["release"].passphrase)
        pfile = keyring.passphrase_file(keys["release"].fingerprint)
        assert os.path.dirname(pfile) == home
        assert stat.S_IMODE(os.stat(pfile).st_mode) == 0o600
    assert not os.path.exists(home)
    assert not [cmd for cmd in command_lines() if home.encode() in cmd]  # no agent left


def command_lines():
    """Every process's /proc/PID/cmdline."""
    lines = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                lines.append(cmdline.read())
        except OSError:
            pass
    return lines


def test_import_refuses_what_is_not_a_key():
    with simplesigning.Keyring() as keyring:
        with pytest.raises(KeyFileError, match="not an OpenPGP secret key"):
            keyring.import_secret_key(b"-----BEGIN PGP PRIVATE KEY BLOCK-----\nnope\n", "x")


# --- configuration files ----------------------------------------------------------------

def test_registries_d_round_trip(tmp_path):
    folder = simplesigning.write_registries_d(str(tmp_path / "d"), "registry.example:5000",
                                              "https://sigs.example/", str(tmp_path / "s"))
    [name] = os.listdir(folder)
    text = (tmp_path / "d" / name).read_text()
    # The trailing slash is dropped: skopeo appends "/<repository>@...".
    assert "docker:\n  registry.example:5000:\n    lookaside: https://sigs.example\n" in text
    assert f"lookaside-staging: file://{tmp_path}/s" in text
    assert simplesigning.read_registries_d(folder, "registry.example:5000", "team/app") == {
        "lookaside": "https://sigs.example", "lookaside-staging": f"file://{tmp_path}/s"}
    with pytest.raises(TrustError, match="no lookaside for other.example/team/app"):
        simplesigning.read_registries_d(folder, "other.example", "team/app")


def open_bytes(path):
    """A file's bytes."""
    with open(path, "rb") as data:
        return data.read()


def open_text(path):
    """A file's text."""
    with open(path, encoding="utf-8") as text:
        return text.read()


def test_policy_rejects_by_default_and_names_the_identity(tmp_path):
    path = simplesigning.write_policy(str(tmp_path / "p.json"), "pub.asc",
                                      scope="registry.example/team/app")
    policy = json.loads(open_text(path))
    assert policy["default"] == [{"type": "reject"}]
    docker = policy["transports"]["docker"]
    assert docker[""] == [{"type": "reject"}]
    [requirement] = docker["registry.example/team/app"]
    assert requirement["keyType"] == "GPGKeys"
    assert requirement["signedIdentity"] == {"type": "matchRepository"}
    path = simplesigning.write_policy(str(tmp_path / "q.json"), "pub.asc",
                                      "registry.example/production/app")
    requirement = json.loads(open_text(path))["transports"]["docker"][""][0]
    assert requirement["signedIdentity"] == {"type": "exactRepository",
                                             "dockerRepository": "registry.example/production/app"}
