"""//tools/trust:cosign as an outsider runs it: each command once end to end against a
real docker-registry, and bad input gives exit 2 (usage) or 1 (failure) with one clear
line, no traceback, and the password nowhere in argv or output."""

import contextlib
import io
import json
import os
import stat
import subprocess

import pytest

from tools.trust import cosign_cli, keys
from tools.trust.tests import cosign_support
from tools.trust.tests.cosign_support import fixture_registry

SHARED_FIXTURES = (fixture_registry,)
PASSWORD = "pw-that-must-not-leak-7f3a"


@pytest.fixture(name="job", scope="module")
def fixture_job(registry, tmp_path_factory):
    """A repository with one image, a key pair made by the CLI, and the job's env."""
    repository = cosign_support.unique("cli")
    workdir = tmp_path_factory.mktemp("cli")
    env = registry.env(repository, COSIGN_PASSWORD=PASSWORD,
                       BUILD_WORKING_DIRECTORY=str(workdir))
    status, out, err = _run(env, "generate-key-pair")
    assert status == 0, err
    assert "cosign.key" in out and "cosign.pub" in out
    digest = cosign_support.push_image(registry.client(repository), "cli image", tag="v1")
    return {"env": env, "dir": workdir, "digest": digest,
            "base": f"{registry.address}/{repository}"}


def _run(env, *argv):
    """(status, stdout, stderr) of the CLI's main, with `env` as its environment."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cosign_cli.main(list(argv), environ=env)
        except SystemExit as exit_:  # argparse's usage errors
            status = exit_.code
    output = out.getvalue() + err.getvalue()
    assert "Traceback" not in output
    assert PASSWORD not in output
    return status, out.getvalue(), err.getvalue()


def test_generate_key_pair_writes_a_cosign_key_only_its_owner_reads(job):
    private = job["dir"] / "cosign.key"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    key = keys.load_private_key(private.read_bytes(), PASSWORD.encode())
    public = keys.load_public_key((job["dir"] / "cosign.pub").read_bytes())
    assert keys.key_id(key) == keys.key_id(public)


def test_generate_key_pair_never_overwrites(job):
    status, _, err = _run(job["env"], "generate-key-pair")
    assert status == 1
    assert "exists" in err and "--output-key-prefix" in err


def test_generate_key_pair_without_cosign_password_is_a_usage_error(job, tmp_path):
    env = dict(job["env"], BUILD_WORKING_DIRECTORY=str(tmp_path))
    del env["COSIGN_PASSWORD"]
    status, _, err = _run(env, "generate-key-pair")
    assert status == 2
    assert "set COSIGN_PASSWORD" in err
    assert not os.listdir(tmp_path)


def test_the_password_is_not_a_flag(job):
    status, _, err = _run(job["env"], "sign", "--key", "cosign.key", "--digest",
                          job["digest"], "--password", PASSWORD)
    assert status == 2
    assert "unrecognized arguments: --password (values not shown" in err


def test_sign_then_verify(job):
    status, out, err = _run(job["env"], "sign", "--key", "cosign.key", "--digest", job["digest"])
    assert status == 0, err
    assert f"{job['base']}@{job['digest']}" in out
    status, out, err = _run(job["env"], "verify", "--key", "cosign.pub",
                            "--digest", job["digest"])
    assert status == 0, err
    (payload,) = json.loads(out)
    assert payload["critical"]["image"]["docker-manifest-digest"] == job["digest"]
    assert payload["critical"]["identity"]["docker-reference"] == job["base"]


def test_verify_with_another_identity_fails(job):
    _run(job["env"], "sign", "--key", "cosign.key", "--digest", job["digest"])
    status, _, err = _run(job["env"], "verify", "--key", "cosign.pub", "--digest",
                          job["digest"], "--identity", "example.invalid/other/repo")
    assert status == 1
    assert "not example.invalid/other/repo" in err
    assert len(err.strip().splitlines()) == 1


def test_verify_with_another_key_fails(job, tmp_path):
    private_pem, public_pem = keys.generate_key_pair(b"x")
    del private_pem
    (tmp_path / "other.pub").write_bytes(public_pem)
    _run(job["env"], "sign", "--key", "cosign.key", "--digest", job["digest"])
    status, _, err = _run(job["env"], "verify", "--key", str(tmp_path / "other.pub"),
                          "--digest", job["digest"])
    assert status == 1
    assert "signed by another key" in err and job["digest"] in err


def test_attest_then_verify_attestation(job, tmp_path):
    predicate = tmp_path / "provenance.json"
    predicate.write_text(json.dumps({"buildDefinition": {"buildType": "test"}}))
    status, out, err = _run(job["env"], "attest", "--key", "cosign.key", "--digest",
                            job["digest"], "--type", "slsaprovenance1",
                            "--predicate", str(predicate))
    assert status == 0, err
    assert "https://slsa.dev/provenance/v1" in out
    status, out, err = _run(job["env"], "verify-attestation", "--key", "cosign.pub",
                            "--digest", job["digest"], "--type",
                            "https://slsa.dev/provenance/v1")
    assert status == 0, err
    statement = json.loads(out.splitlines()[0])
    assert statement["predicate"] == {"buildDefinition": {"buildType": "test"}}
    assert statement["subject"][0]["digest"]["sha256"] == job["digest"][7:]


def test_verify_attestation_of_an_unattested_type_fails(job):
    status, _, err = _run(job["env"], "verify-attestation", "--key", "cosign.pub",
                          "--digest", job["digest"], "--type", "spdxjson")
    assert status == 1
    assert "https://spdx.dev/Document" in err


def test_a_missing_key_file_fails_by_name(job):
    status, _, err = _run(job["env"], "sign", "--key", "nowhere.key", "--digest",
                          job["digest"])
    assert status == 1
    assert err.strip() == "cosign: error: the private key nowhere.key does not exist"


def test_a_wrong_password_fails_by_name(job):
    env = dict(job["env"], COSIGN_PASSWORD="wrong")
    status, _, err = _run(env, "sign", "--key", "cosign.key", "--digest", job["digest"])
    assert status == 1
    assert "wrong password" in err and "cosign.key" in err


def test_a_tag_instead_of_a_digest_is_a_usage_error(job):
    status, _, err = _run(job["env"], "verify", "--key", "cosign.pub", "--digest", "v1")
    assert status == 2
    assert "'v1' is not a digest" in err


def test_an_unknown_predicate_type_is_a_usage_error(job):
    status, _, err = _run(job["env"], "verify-attestation", "--key", "cosign.pub",
                          "--digest", job["digest"], "--type", "provenance")
    assert status == 2
    assert "neither a predicate type URI" in err


def test_no_repository_is_a_usage_error(job):
    env = dict(job["env"])
    del env["MODELSHIP_REPOSITORY"]
    status, _, err = _run(env, "verify", "--key", "cosign.pub", "--digest", job["digest"])
    assert status == 2
    assert "no repository" in err


def test_the_built_binary_signs_and_fails_without_traceback(job):
    """The py_binary itself, as `bazel run` runs it: the password only in the env."""
    program = os.path.abspath(os.path.join("tools", "trust", "cosign"))
    env = dict(job["env"], PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    argv = [program, "sign", "--key", "cosign.key", "--digest", job["digest"]]
    assert PASSWORD not in " ".join(argv)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([program, "verify", "--key", "missing.pub", "--digest",
                           job["digest"]], env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "cosign: error: the public key missing.pub does not exist"
    assert "Traceback" not in proc.stdout + proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
