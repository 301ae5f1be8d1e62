"""Promote, rollback and deploy take only images whose signatures and attestations
verify, and move nothing otherwise. Against a real docker-registry (htpasswd on),
with real keys: a cosign-format key pair (tools/trust/keys.py) and, for the GPG
case, a real GPG key and skopeo, the signatures served by a real nginx.

The images are small (pushed through the distribution API, no build) but carry
what a production image carries for these checks: an SBOM at the conventional
path, a model file named by MODELSHIP_MODEL_PATH, the release labels.
"""

import hashlib
import io
import json
import os
import tarfile

import pytest

from tools.deploy import main as deploy_main
from tools.deploy.tests.recorder import RecordingKubectl
from tools.release import history, image as image_lib, registry as registry_lib
from tools.release import settings as settings_lib, trust as trust_lib
from tools.release.tests import support
from tools.trust import cosign, dsse, keys

PASSWORD = "correct horse battery staple"
MODEL_PATH = "opt/modelship/model/model.bin"
TITLE = "modelship-test"
SBOM_PATH = f"{trust_lib.SBOM_DIR}/{TITLE}.spdx.json"


@pytest.fixture(name="cosign_keys", scope="module")
def fixture_cosign_keys(tmp_path_factory):
    """The release key pair and another one, as files."""
    folder = tmp_path_factory.mktemp("keys")
    found = {}
    for name in ("release", "other"):
        private, public = keys.generate_key_pair(PASSWORD.encode())
        for suffix, data in ((".key", private), (".pub", public)):
            path = folder / (name + suffix)
            path.write_bytes(data)
            found[name + suffix] = str(path)
    return found


def _tar(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def push_candidate(client, seed, tag=None):
    """A small image with release labels, an SBOM and a model; returns its digest."""
    labels = support.releasable_labels(seed)
    labels["org.opencontainers.image.title"] = TITLE
    model = ("model " + seed).encode()
    labels["io.modelship.model.version"] = hashlib.sha256(model).hexdigest()
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": seed,
                       "packages": [{"name": "numpy", "versionInfo": "2.0.0"}]},
                      sort_keys=True).encode()
    layers = [_tar({SBOM_PATH: sbom}), _tar({MODEL_PATH: model})]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": labels, "Env": [f"MODELSHIP_MODEL_PATH=/{MODEL_PATH}"]},
        "rootfs": {"type": "layers",
                   "diff_ids": [registry_lib.sha256_digest(layer) for layer in layers]},
    }, sort_keys=True).encode()
    media = "application/vnd.oci.image.manifest.v1+json"
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config), "digest": client.push_blob(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(layer),
                    "digest": client.push_blob(layer)} for layer in layers],
    }, sort_keys=True).encode()
    digest = registry_lib.sha256_digest(manifest)
    client.put_manifest(tag or digest, media, manifest)
    return digest


def provenance_of(pushed):
    """A provenance predicate naming the image's commit (what publish attests)."""
    return {"buildDefinition": {
        "buildType": "https://modelship.dev/buildtypes/model-image/v1",
        "externalParameters": {"source": {"commit": pushed.labels[
            "org.opencontainers.image.revision"]}}}}


def release_key(repo):
    """The release private key, loaded."""
    with open(repo.keys["release.key"], "rb") as pem:
        return keys.load_private_key(pem.read(), PASSWORD.encode())


class Repo:
    """One repository per test, its release env and signing helpers."""

    def __init__(self, registry, name, cosign_keys):
        self.keys = cosign_keys
        self.env = registry.env(name, MODELSHIP_VERIFY="1",
                                MODELSHIP_COSIGN_KEY=cosign_keys["release.key"],
                                MODELSHIP_COSIGN_PASSWORD=PASSWORD,
                                MODELSHIP_COSIGN_PUBLIC_KEY=cosign_keys["release.pub"])
        self.settings = settings_lib.load(self.env)
        self.client = registry_lib.Client(self.settings)
        self.store = history.Store(self.client)

    def trust(self, **changes):
        """Trust bound to this repository, with the env's keys (and changes)."""
        env = dict(self.env, **changes)
        return trust_lib.Trust(trust_lib.load(env), self.settings, self.client)

    def candidate(self, seed, sign=True, reproducible=True):
        """A pushed, validated candidate, signed and attested as publish and the
        reproducibility job do; returns its digest."""
        digest = push_candidate(self.client, seed, tag=f"candidate-{seed}")
        pushed = image_lib.Pushed(self.client, digest)
        if sign:
            self.trust().sign(pushed, provenance=provenance_of(pushed))
        if reproducible:
            self.trust().attest_reproducible(
                {"identical": True, "digest": digest, "rebuild_digest": digest,
                 "git_sha": pushed.labels["org.opencontainers.image.revision"]}, {})
        self.store.append(history.record("validate", digest, pushed.reference, pushed.labels,
                                         result="passed", metrics={}))
        return digest

    def cli(self, capsys, *argv, **env):
        """(status, stdout, stderr) of the release CLI with this repository's env."""
        return support.run_cli(capsys, dict(self.env, **env), *argv)


@pytest.fixture(name="repo")
def fixture_repo(registry, cosign_keys, request):
    """A fresh repository of the real registry per test."""
    name = "signed/t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    return Repo(registry, name, cosign_keys)


def _refused(capsys, repo, digest, *fragments, **env):
    """promote --digest refuses with exit 1, naming the digest and each fragment, and
    `stable` does not move."""
    before = repo.client.resolve("stable")
    status, out, err = repo.cli(capsys, "promote", "--digest", digest, **env)
    assert status == 1, out + err
    assert digest in err and "does not verify" in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err and PASSWORD not in err + out
    assert repo.client.resolve("stable") == before


def test_a_signed_attested_reproducible_image_verifies_and_promotes(capsys, repo):
    digest = repo.candidate("good")
    manifest_before = repo.client.manifest(digest)[1]
    status, out, err = repo.cli(capsys, "verify", "--digest", digest)
    assert status == 0, out + err
    for name in ("cosign signature", "sbom attestation", "provenance attestation",
                 "model signature attestation", "reproducibility attestation"):
        assert f"PASS  {name}" in out, out
    assert out.strip().endswith(f"VERIFIED {digest}")
    status, out, err = repo.cli(capsys, "promote", "--digest", digest)
    assert status == 0, err
    assert repo.client.resolve("stable") == digest
    # Signing and attaching changed nothing of the image itself.
    assert repo.client.manifest(digest)[1] == manifest_before
    assert repo.client.resolve(cosign.signature_tag(digest))
    assert repo.client.resolve(cosign.attestation_tag(digest))


def test_an_unsigned_digest_is_refused(capsys, repo):
    digest = repo.candidate("unsigned", sign=False)
    _refused(capsys, repo, digest, "cosign signature")


def test_a_signature_by_another_key_is_refused(capsys, repo):
    digest = repo.candidate("other-key", sign=False)
    pushed = image_lib.Pushed(repo.client, digest)
    repo.trust(MODELSHIP_COSIGN_KEY=repo.keys["other.key"]).sign(
        pushed, provenance=provenance_of(pushed))
    repo.trust(MODELSHIP_COSIGN_KEY=repo.keys["other.key"]).attest_reproducible(
        {"identical": True, "digest": digest, "rebuild_digest": digest,
         "git_sha": pushed.labels["org.opencontainers.image.revision"]}, {})
    _refused(capsys, repo, digest, "cosign signature")


def test_a_signature_for_another_repository_is_refused(capsys, repo):
    digest = repo.candidate("elsewhere")
    # Re-sign the .sig for another repository only: drop ours, sign for theirs.
    key = release_key(repo)
    other = repo.client.manifest(cosign.signature_tag(digest))
    assert other
    empty = dict(json.loads(other[1]), layers=[])
    repo.client.put_manifest(cosign.signature_tag(digest), other[0],
                             json.dumps(empty).encode())
    cosign.sign_image(repo.client, digest, key, f"{repo.client.name}/attacker/payload")
    _refused(capsys, repo, digest, "cosign signature", "attacker/payload")


def test_a_tag_moved_to_another_digest_after_signing_is_refused(capsys, repo):
    signed = repo.candidate("signed")
    unsigned = repo.candidate("moved", sign=False)
    # candidate-signed now points at an unsigned image: promoting what it points
    # at by digest finds no signature for that digest.
    repo.client.put_manifest("candidate-signed", *repo.client.manifest(unsigned)[:2])
    assert repo.client.resolve("candidate-signed") == unsigned
    _refused(capsys, repo, unsigned, "cosign signature")
    assert repo.cli(capsys, "promote", "--digest", signed)[0] == 0


def _replace_attestation(repo, digest, predicate_type, edit):
    """Rewrites the `.att` layer of one predicate type, as someone with push access could."""
    media, _, manifest = repo.client.manifest(cosign.attestation_tag(digest))
    for layer in manifest["layers"]:
        if (layer.get("annotations") or {}).get("predicateType") == predicate_type:
            envelope = json.loads(repo.client.blob(layer["digest"]))
            envelope = edit(envelope)
            data = json.dumps(envelope).encode()
            layer["digest"], layer["size"] = repo.client.push_blob(data), len(data)
    repo.client.put_manifest(cosign.attestation_tag(digest), media,
                             json.dumps(manifest).encode())


def _tamper_payload(change):
    def edit(envelope):
        import base64  # pylint: disable=import-outside-toplevel
        statement = json.loads(base64.b64decode(envelope["payload"]))
        change(statement["predicate"])
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        return envelope
    return edit


def test_a_tampered_sbom_is_refused(capsys, repo):
    digest = repo.candidate("sbom")
    _replace_attestation(repo, digest, trust_lib.SBOM,
                         _tamper_payload(lambda p: p["packages"].pop()))
    _refused(capsys, repo, digest, "sbom attestation")


def test_an_sbom_other_than_the_shipped_one_is_refused_even_if_signed(capsys, repo):
    digest = repo.candidate("sbom-other")
    key = release_key(repo)

    def resign(envelope):
        import base64  # pylint: disable=import-outside-toplevel
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["packages"] = []
        return dsse.sign("application/vnd.in-toto+json",
                         json.dumps(statement).encode(), key)

    _replace_attestation(repo, digest, trust_lib.SBOM, resign)
    _refused(capsys, repo, digest, "sbom attestation", "not the SBOM the image ships")


def test_a_tampered_provenance_is_refused(capsys, repo):
    digest = repo.candidate("provenance")
    _replace_attestation(repo, digest, trust_lib.PROVENANCE, _tamper_payload(
        lambda p: p["buildDefinition"]["externalParameters"].update(source="evil")))
    _refused(capsys, repo, digest, "provenance attestation")


def test_a_missing_reproducibility_attestation_is_refused_unless_waived(capsys, repo):
    digest = repo.candidate("not-rebuilt", reproducible=False)
    _refused(capsys, repo, digest, "reproducibility attestation")
    status, _, err = repo.cli(capsys, "promote", "--digest", digest,
                              MODELSHIP_REQUIRE_REPRODUCIBLE="0")
    assert status == 0, err


def test_no_public_key_configured_is_refused_with_the_fix(capsys, repo):
    digest = repo.candidate("no-key")
    env = {key: value for key, value in repo.env.items()
           if key != "MODELSHIP_COSIGN_PUBLIC_KEY"}
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", digest)
    assert status == 1
    assert "no public key" in err and "MODELSHIP_COSIGN_PUBLIC_KEY" in err
    assert repo.client.resolve("stable") is None


def test_rollback_refuses_a_previous_release_that_no_longer_verifies(capsys, repo):
    first, second = repo.candidate("first"), repo.candidate("second")
    for digest in (first, second):
        assert repo.cli(capsys, "promote", "--digest", digest)[0] == 0
    # Someone replaces the first release's signatures with another key's.
    repo.client.put_manifest(cosign.signature_tag(first),
                             *repo.client.manifest(cosign.signature_tag(second))[:2])
    status, out, err = repo.cli(capsys, "rollback")
    assert status == 1, out
    assert f"rollback to {first}" in err and "cosign signature" in err
    assert repo.client.resolve("stable") == second


def test_validate_reports_the_signature_checks(repo):
    digest = repo.candidate("validate", sign=False)
    checks = repo.trust().checks(image_lib.Pushed(repo.client, digest))
    assert [c.name for c in checks if not c.ok][0] == "cosign signature"


def _deploy(repo, tmp_path, *argv, env=None):
    kubectl = RecordingKubectl()
    saved = dict(os.environ)
    os.environ.update(dict(repo.env, **(env or {})))
    try:
        status = deploy_main.main(["--target", "kubernetes", "--state-dir", str(tmp_path)]
                                  + list(argv), kubectl=kubectl)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return status, kubectl


def test_deploy_runs_only_verified_images(capsys, repo, tmp_path):
    good, bad = repo.candidate("deploy-good"), repo.candidate("deploy-bad", sign=False)
    base = f"{repo.settings.base}"
    status, kubectl = _deploy(repo, tmp_path, "deploy", "--image", f"{base}@{bad}")
    err = capsys.readouterr().err
    assert status == 1 and bad in err and "cosign signature" in err, err
    assert not kubectl.calls
    status, kubectl = _deploy(repo, tmp_path, "deploy", "--image", f"{base}@{good}")
    assert status == 0, capsys.readouterr().err
    assert kubectl.calls and kubectl.calls[0][0] == "apply"
    # A canary of an unsigned image starts nothing and leaves stable alone.
    status, kubectl = _deploy(repo, tmp_path, "canary", "--image", f"{base}@{bad}",
                              "--weight", "10")
    assert status == 1 and not kubectl.calls
    capsys.readouterr()
    status, _ = _deploy(repo, tmp_path, "status")
    tracks = json.loads(capsys.readouterr().out)["tracks"]
    assert tracks["stable"]["digest"] == good and tracks["canary"] is None


def test_the_gpg_signature_is_checked_by_skopeo_when_configured(capsys, repo, tmp_path):
    from tools.trust import simplesigning  # pylint: disable=import-outside-toplevel
    from tools.trust.tests import lookaside_server  # pylint: disable=import-outside-toplevel
    staging = str(tmp_path / "lookaside")
    server = lookaside_server.Lookaside(str(tmp_path / "nginx"), staging).start()
    try:
        with simplesigning.Keyring() as ring:
            fingerprint = ring.generate("Release <release@example.invalid>")
            secret = tmp_path / "gpg.key"
            secret.write_bytes(ring.export_secret(fingerprint))
            public = tmp_path / "gpg.pub"
            public.write_bytes(ring.export_public(fingerprint))
        gpg = {"MODELSHIP_GPG_KEY": str(secret), "MODELSHIP_GPG_PASSPHRASE": "",
               "MODELSHIP_GPG_PUBLIC_KEY": str(public), "MODELSHIP_LOOKASIDE": server.url,
               "MODELSHIP_LOOKASIDE_STAGING": staging}
        digest = repo.candidate("gpg")
        pushed = image_lib.Pushed(repo.client, digest)
        # Signed in cosign's format only: the GPG check must fail, naming the digest.
        _refused(capsys, repo, digest, "GPG signature", "not signed", **gpg)
        repo.trust(**gpg).sign(pushed, provenance=provenance_of(pushed))
        status, out, err = repo.cli(capsys, "verify", "--digest", digest, **gpg)
        assert status == 0, out + err
        assert "PASS  GPG signature" in out
        assert repo.cli(capsys, "promote", "--digest", digest, **gpg)[0] == 0
    finally:
        server.stop()
