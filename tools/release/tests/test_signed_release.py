"""Promote, rollback and deploy take only images whose signatures and attestations
verify, and move nothing otherwise. Against a real docker-registry (htpasswd on),
with real keys: a cosign-format key pair (tools/trust/keys.py) and, for the GPG
case, a real GPG key and skopeo, the signatures served by a real nginx.

The images are small (pushed through the distribution API, no build) but carry
what a production image carries for these checks: an SBOM at the conventional
path, a model file named by MODELSHIP_MODEL_PATH, the release labels.
"""

import base64
import hashlib
import json
import os

import pytest

from tools.deploy import main as deploy_main
from tools.deploy.tests.recorder import RecordingKubectl
from tools.release import history, image as image_lib, registry as registry_lib, release
from tools.release import settings as settings_lib, trust as trust_lib
from tools.release.tests import small_images, support
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


def push_candidate(client, seed, tag=None):
    """A small image with release labels, an SBOM and a model; returns its digest."""
    labels = support.releasable_labels(seed)
    labels["org.opencontainers.image.title"] = TITLE
    model = ("model " + seed).encode()
    labels["io.modelship.model.version"] = hashlib.sha256(model).hexdigest()
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": seed,
                       "packages": [{"name": "numpy", "versionInfo": "2.0.0"}]},
                      sort_keys=True).encode()
    return small_images.push(client, [{SBOM_PATH: sbom}, {MODEL_PATH: model}],
                             config={"Labels": labels,
                                     "Env": [f"MODELSHIP_MODEL_PATH=/{MODEL_PATH}"]},
                             tag=tag)


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


def _replace_attestation(repo, digest, predicate_type, edit):
    """Rewrites the `.att` layer of one predicate type, as someone with push access could;
    `edit(envelope)` returns the new envelope, or None to drop the layer."""
    media, _, manifest = repo.client.manifest(cosign.attestation_tag(digest))
    layers = []
    for layer in manifest["layers"]:
        if (layer.get("annotations") or {}).get("predicateType") == predicate_type:
            envelope = edit(json.loads(repo.client.blob(layer["digest"])))
            if envelope is None:
                continue
            data = json.dumps(envelope).encode()
            layer["digest"], layer["size"] = repo.client.push_blob(data), len(data)
        layers.append(layer)
    manifest["layers"] = layers
    repo.client.put_manifest(cosign.attestation_tag(digest), media,
                             json.dumps(manifest).encode())


def _tamper_payload(change):
    def edit(envelope):
        statement = json.loads(base64.b64decode(envelope["payload"]))
        change(statement["predicate"])
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        return envelope
    return edit


def _drop_signatures(repo, digest):
    media, _, manifest = repo.client.manifest(cosign.signature_tag(digest))
    repo.client.put_manifest(cosign.signature_tag(digest), media,
                             json.dumps(dict(manifest, layers=[])).encode())


# How a signed, attested, reproducible release can be broken afterwards, by someone
# who may push to the repository (or by a release that skipped a step): each
# function gets the repository and a good digest and breaks it; `fragment` is what
# the refusal must name.
def _unsigned(repo, digest):
    _drop_signatures(repo, digest)


def _other_key(repo, digest):
    _drop_signatures(repo, digest)
    with open(repo.keys["other.key"], "rb") as pem:
        other = keys.load_private_key(pem.read(), PASSWORD.encode())
    cosign.sign_image(repo.client, digest, other, repo.settings.base)


def _other_identity(repo, digest):
    _drop_signatures(repo, digest)
    cosign.sign_image(repo.client, digest, release_key(repo),
                      f"{repo.client.name}/attacker/payload")


def _tag_moved(repo, digest):
    # The candidate tag is moved to an unsigned image, and the signatures of the image
    # it pointed at are copied beside the new one: promoting what the tag now points
    # at (by digest) must not pass on the old image's signatures.
    other = push_candidate(repo.client, "moved-" + digest[7:19])
    repo.client.put_manifest(f"candidate-{digest[7:19]}", *repo.client.manifest(other)[:2])
    repo.client.put_manifest(cosign.signature_tag(other),
                             *repo.client.manifest(cosign.signature_tag(digest))[:2])
    pushed = image_lib.Pushed(repo.client, other)
    repo.store.append(history.record("validate", other, pushed.reference, pushed.labels,
                                     result="passed", metrics={}))
    return other


def _tampered_sbom(repo, digest):
    _replace_attestation(repo, digest, trust_lib.SBOM,
                         _tamper_payload(lambda p: p["packages"].pop()))


def _resigned_other_sbom(repo, digest):
    def resign(envelope):
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["packages"] = []
        return dsse.sign("application/vnd.in-toto+json", json.dumps(statement).encode(),
                         release_key(repo))
    _replace_attestation(repo, digest, trust_lib.SBOM, resign)


def _tampered_provenance(repo, digest):
    _replace_attestation(repo, digest, trust_lib.PROVENANCE, _tamper_payload(
        lambda p: p["buildDefinition"]["externalParameters"].update(target="//evil:image")))


def _no_reproducibility(repo, digest):
    _replace_attestation(repo, digest, trust_lib.REPRODUCIBLE, lambda envelope: None)


BREAKS = {
    "an unsigned digest": (_unsigned, "not signed in cosign's format"),
    "a signature by another key": (_other_key, "cosign signature"),
    "a signature for another repository": (_other_identity, "attacker/payload"),
    "a tag moved to another digest after signing": (_tag_moved, "for another image"),
    "a tampered SBOM": (_tampered_sbom, "sbom attestation"),
    "an SBOM other than the shipped one, signed": (_resigned_other_sbom,
                                                   "not the SBOM the image ships"),
    "a tampered provenance": (_tampered_provenance, "provenance attestation"),
    "a missing reproducibility attestation": (_no_reproducibility,
                                              "reproducibility attestation"),
}


def _broken(repo, case):
    """A release broken in the case's way; returns (digest, what the refusal names)."""
    digest = repo.candidate("case-" + hashlib.sha1(case.encode()).hexdigest()[:8])
    breaker, fragment = BREAKS[case]
    return breaker(repo, digest) or digest, fragment


@pytest.mark.parametrize("case", list(BREAKS))
def test_promote_refuses(capsys, repo, case):
    digest, fragment = _broken(repo, case)
    _refused(capsys, repo, digest, fragment)


@pytest.mark.parametrize("case", list(BREAKS))
def test_deploy_refuses_and_starts_nothing(capsys, repo, tmp_path, case):
    good = repo.candidate("deployed")
    assert _deploy(repo, tmp_path, "deploy", "--image", f"{repo.settings.base}@{good}")[0] == 0
    digest, fragment = _broken(repo, case)
    for argv in (("deploy",), ("canary", "--weight", "10"),
                 ("run-canary", "--steps", "10", "--interval", "1")):
        capsys.readouterr()
        status, kubectl = _deploy(repo, tmp_path, *argv, "--image",
                                  f"{repo.settings.base}@{digest}")
        err = capsys.readouterr().err
        assert status == 1, (argv, err)
        assert digest in err and fragment in err and "nothing was changed" in err, err
        assert "Traceback" not in err and PASSWORD not in err
        assert not kubectl.calls, kubectl.calls
    _deploy(repo, tmp_path, "status")
    tracks = json.loads(capsys.readouterr().out)["tracks"]
    assert tracks["stable"]["digest"] == good and tracks["canary"] is None


@pytest.mark.parametrize("case", list(BREAKS))
def test_rollback_refuses_a_previous_release_broken_after_it_shipped(
        capsys, repo, tmp_path, case):
    first, fragment = _broken(repo, case)
    # The first release was good when it shipped: promote and deploy it before the
    # break would have passed; here it is promoted with the checks it can still pass
    # waived, as an older release tool (or a release before the break) did.
    assert repo.cli(capsys, "promote", "--digest", first, MODELSHIP_VERIFY="0")[0] == 0
    second = repo.candidate("second")
    assert repo.cli(capsys, "promote", "--digest", second)[0] == 0
    status, out, err = repo.cli(capsys, "rollback")
    assert status == 1, out
    assert f"rollback to {first}" in err and fragment in err, err
    assert repo.client.resolve("stable") == second
    # Production stays where it is too: deploy's rollback checks the same.
    base = repo.settings.base
    assert _deploy(repo, tmp_path, "deploy", "--image", f"{base}@{first}",
                   env={"MODELSHIP_VERIFY": "0"})[0] == 0
    assert _deploy(repo, tmp_path, "deploy", "--image", f"{base}@{second}")[0] == 0
    capsys.readouterr()
    status, kubectl = _deploy(repo, tmp_path, "rollback")
    assert status == 1 and fragment in capsys.readouterr().err
    assert not kubectl.calls
    _deploy(repo, tmp_path, "status")
    assert json.loads(capsys.readouterr().out)["tracks"]["stable"]["digest"] == second


def test_a_missing_reproducibility_attestation_is_waived_when_the_pipeline_says_so(
        capsys, repo):
    digest, _ = _broken(repo, "a missing reproducibility attestation")
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


def test_validate_reports_the_signature_checks_first(repo):
    digest = repo.candidate("validate")
    _unsigned(repo, digest)
    checks = repo.trust().checks(image_lib.Pushed(repo.client, digest))
    assert [c.name for c in checks if not c.ok] == ["cosign signature"]
    passed, reported = release.Releases(repo.settings, client=repo.client,
                                        trust=trust_lib.load(repo.env)).validate(
        digest, run_gates=lambda settings, pushed: [])
    assert not passed and reported[0].gate == "signatures"


def _deploy(repo, tmp_path, *argv, env=None):
    """(exit status, recorded kubectl) of the deploy tool's kubernetes target, with the
    repository's release env (and `env`)."""
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
