"""Signatures and attestations in cosign's layout, against a real docker-registry:
what we write is what a cosign verifier reads (checked here with plain `cryptography`),
and what must be refused is refused, naming the digest and the reason."""

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tools.trust import cosign, dsse
from tools.trust.errors import TrustError
from tools.trust.tests import cosign_support
from tools.trust.tests.cosign_support import fixture_key_pair, fixture_registry

SHARED_FIXTURES = (fixture_registry, fixture_key_pair)
PREDICATE = "https://slsa.dev/provenance/v1"


@pytest.fixture(name="repo")
def fixture_repo(registry):
    """(client, repository `host:port/path`) of a fresh repository."""
    name = cosign_support.unique("image")
    return registry.client(name), f"{registry.address}/{name}"


def _other_key():
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.public_key()


def _sig_layers(client, digest):
    _, _, manifest = client.manifest(cosign.signature_tag(digest))
    return manifest


def test_names_of_the_signature_and_attestation_tags():
    digest = "sha256:" + "ab" * 32
    assert cosign.signature_tag(digest) == "sha256-" + "ab" * 32 + ".sig"
    assert cosign.attestation_tag(digest) == "sha256-" + "ab" * 32 + ".att"
    with pytest.raises(TrustError, match="not an image digest"):
        cosign.signature_tag("latest")


def test_the_simple_signing_payload_is_cosigns_exact_json():
    digest = "sha256:" + "0" * 64
    assert cosign.simple_signing_payload("reg:5000/team/model", digest) == (
        b'{"critical":{"identity":{"docker-reference":"reg:5000/team/model"},'
        b'"image":{"docker-manifest-digest":"sha256:' + b"0" * 64 + b'"},'
        b'"type":"cosign container image signature"},"optional":null}')
    assert cosign.simple_signing_payload("r/x", digest, {"b": "2", "a": "<1>"}).endswith(
        b'"optional":{"a":"\\u003c1\\u003e","b":"2"}}')


def test_repository_of_drops_tag_and_digest():
    assert cosign.repository_of("127.0.0.1:5000/a/b:v1") == "127.0.0.1:5000/a/b"
    assert cosign.repository_of("127.0.0.1:5000/a/b@sha256:" + "0" * 64) == \
        "127.0.0.1:5000/a/b"
    assert cosign.repository_of("127.0.0.1:5000/a/b") == "127.0.0.1:5000/a/b"
    assert cosign.repository_of("Registry.Example.com/team/model:v1") == \
        "registry.example.com/team/model"
    assert cosign.repository_of("localhost/x") == "localhost/x"


@pytest.mark.parametrize("reference", ["ubuntu", "ubuntu:22.04", "docker.io/ubuntu",
                                       "docker.io/library/ubuntu:22.04",
                                       "index.docker.io/library/ubuntu"])
def test_docker_hub_names_are_completed_as_go_containerregistry_does(reference):
    assert cosign.repository_of(reference) == "index.docker.io/library/ubuntu"


def test_sign_then_verify_leaves_the_image_as_it_was(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "signed", tag="v1")
    _, image_before, _ = client.manifest(digest)
    sig_digest = cosign.sign_image(client, digest, key_pair[0], name + ":v1")
    assert client.resolve(cosign.signature_tag(digest)) == sig_digest
    assert client.resolve("v1") == digest
    assert client.manifest(digest)[1] == image_before
    payload = cosign.verify_image(client, digest, key_pair[1], name)
    assert payload["critical"] == {"identity": {"docker-reference": name},
                                   "image": {"docker-manifest-digest": digest},
                                   "type": "cosign container image signature"}


def test_the_signature_layer_verifies_as_a_cosign_verifier_reads_it(repo, key_pair):
    """Layout and crypto checked without our verifier: OCI manifest, simple-signing layer,
    base64 DER ECDSA P-256 SHA-256 signature of the exact payload bytes."""
    client, name = repo
    digest = cosign_support.push_image(client, "independent")
    cosign.sign_image(client, digest, key_pair[0], name, annotations={"run": "42"})
    media_type, raw, manifest = client.manifest(cosign.signature_tag(digest))
    assert media_type == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(client.blob(manifest["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers",
                                "diff_ids": [layer["digest"] for layer in manifest["layers"]]}
    assert raw.startswith(b'{"schemaVersion":2,"mediaType":')
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert list(layer["annotations"]) == ["dev.cosignproject.cosign/signature"]
    payload = client.blob(layer["digest"])
    assert layer["size"] == len(payload)
    assert payload == cosign.simple_signing_payload(name, digest, {"run": "42"})
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    key_pair[1].verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    assert json.loads(payload)["optional"] == {"run": "42"}


def test_signing_twice_with_the_same_key_adds_no_layer(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "twice")
    first = cosign.sign_image(client, digest, key_pair[0], name)
    assert cosign.sign_image(client, digest, key_pair[0], name) == first
    assert len(_sig_layers(client, digest)["layers"]) == 1


def test_two_keys_two_signatures_both_verify(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "two keys")
    other_private, other_public = _other_key()
    cosign.sign_image(client, digest, key_pair[0], name)
    cosign.sign_image(client, digest, other_private, name)
    assert len(_sig_layers(client, digest)["layers"]) == 2
    assert cosign.verify_image(client, digest, key_pair[1], name)
    assert cosign.verify_image(client, digest, other_public, name)


def test_an_unsigned_image_is_not_signed_in_cosigns_format(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "unsigned")
    with pytest.raises(TrustError, match="not signed in cosign's format") as err:
        cosign.verify_image(client, digest, key_pair[1], name)
    assert digest in str(err.value)


def test_another_key_is_refused(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "other key")
    cosign.sign_image(client, digest, _other_key()[0], name)
    with pytest.raises(TrustError, match="signed by another key") as err:
        cosign.verify_image(client, digest, key_pair[1], name)
    assert digest in str(err.value)


def test_a_signature_for_another_repository_is_refused(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "identity")
    cosign.sign_image(client, digest, key_pair[0], "127.0.0.1:1/elsewhere/model:v1")
    with pytest.raises(TrustError, match="signed for repository 127.0.0.1:1/elsewhere/model, "
                                         f"not {name}"):
        cosign.verify_image(client, digest, key_pair[1], name)


def test_any_tag_of_the_repository_is_the_same_identity(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "tags")
    cosign.sign_image(client, digest, key_pair[0], name + ":v1")
    assert cosign.verify_image(client, digest, key_pair[1], name + ":v2")


def test_a_tag_moved_after_signing_points_at_an_unsigned_digest(repo, key_pair):
    client, name = repo
    signed = cosign_support.push_image(client, "before", tag="stable")
    cosign.sign_image(client, signed, key_pair[0], name)
    moved = cosign_support.push_image(client, "after", tag="stable")
    assert client.resolve("stable") == moved != signed
    with pytest.raises(TrustError, match="not signed in cosign's format") as err:
        cosign.verify_image(client, client.resolve("stable"), key_pair[1], name)
    assert moved in str(err.value)
    assert cosign.verify_image(client, signed, key_pair[1], name)


def test_a_signature_copied_from_another_digest_is_refused(repo, key_pair):
    """The .sig manifest of image A put under image B's tag: the signature verifies, but
    its payload names A."""
    client, name = repo
    first = cosign_support.push_image(client, "first")
    second = cosign_support.push_image(client, "second")
    cosign.sign_image(client, first, key_pair[0], name)
    media_type, raw, _ = client.manifest(cosign.signature_tag(first))
    client.put_manifest(cosign.signature_tag(second), media_type, raw)
    with pytest.raises(TrustError, match=f"is for another image, {first}") as err:
        cosign.verify_image(client, second, key_pair[1], name)
    assert second in str(err.value)


def test_a_changed_payload_does_not_verify(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "tampered signature")
    cosign.sign_image(client, digest, key_pair[0], name)
    manifest = _sig_layers(client, digest)
    payload = cosign.simple_signing_payload(name, digest, {"tampered": "yes"})
    manifest["layers"][0].update(digest=client.push_blob(payload), size=len(payload))
    client.put_manifest(cosign.signature_tag(digest), cosign.OCI_MANIFEST,
                        json.dumps(manifest).encode())
    with pytest.raises(TrustError, match="signature does not verify"):
        cosign.verify_image(client, digest, key_pair[1], name)


def test_a_signed_payload_that_is_not_simple_signing_is_refused(repo, key_pair):
    """Signed by the key, but not a cosign claim (another payload type)."""
    client, _ = repo
    digest = cosign_support.push_image(client, "odd payload")
    payload = b'{"critical": {"type": "something else"}}'
    signature = base64.b64encode(key_pair[0].sign(payload, ec.ECDSA(hashes.SHA256())))
    layer = {"mediaType": cosign.SIMPLE_SIGNING_MEDIA_TYPE, "size": len(payload),
             "digest": client.push_blob(payload),
             "annotations": {cosign.SIGNATURE_ANNOTATION: signature.decode()}}
    cosign._put(client, cosign.signature_tag(digest), [layer])  # pylint: disable=protected-access
    with pytest.raises(TrustError, match="not over a cosign simple-signing payload"):
        cosign.verify_image(client, digest, key_pair[1], "x/y")


def test_signing_an_image_that_is_not_there_is_refused(repo, key_pair):
    client, name = repo
    with pytest.raises(TrustError, match="no such image"):
        cosign.sign_image(client, "sha256:" + "1" * 64, key_pair[0], name)


# --- attestations -----------------------------------------------------------------

def _attest(client, name, digest, private_key, subject_digest=None, predicate=None):
    statement = cosign.in_toto_statement(name, subject_digest or digest, PREDICATE,
                                         predicate or {"builder": {"id": "test"}})
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, statement, private_key)
    return cosign.attach_attestation(client, digest, envelope, PREDICATE)


def test_in_toto_statement_is_v1_and_deterministic():
    digest = "sha256:" + "c" * 64
    statement = cosign.in_toto_statement("r/x", digest, PREDICATE, {"b": 1, "a": [2]})
    assert statement == (b'{"_type":"https://in-toto.io/Statement/v1","predicate":'
                         b'{"a":[2],"b":1},"predicateType":"https://slsa.dev/provenance/v1",'
                         b'"subject":[{"digest":{"sha256":"' + b"c" * 64 + b'"},'
                         b'"name":"r/x"}]}')


def test_attest_then_verify(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "attested")
    _, image_before, _ = client.manifest(digest)
    _attest(client, name, digest, key_pair[0])
    (statement,) = cosign.verify_attestations(client, digest, key_pair[1], PREDICATE)
    assert statement["subject"] == [{"name": name, "digest": {"sha256": digest[7:]}}]
    assert statement["predicate"] == {"builder": {"id": "test"}}
    assert client.manifest(digest)[1] == image_before
    # The layer as cosign writes it.
    _, _, manifest = client.manifest(cosign.attestation_tag(digest))
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"] == {"dev.cosignproject.cosign/signature": "",
                                    "predicateType": PREDICATE}
    envelope = json.loads(client.blob(layer["digest"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key_pair[1].verify(signature, dsse.pae(envelope["payloadType"],
                                           base64.b64decode(envelope["payload"])),
                       ec.ECDSA(hashes.SHA256()))


def test_attestations_append_and_each_verifies(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "two attestations")
    _attest(client, name, digest, key_pair[0], predicate={"n": 1})
    _attest(client, name, digest, key_pair[0], predicate={"n": 2})
    statements = cosign.verify_attestations(client, digest, key_pair[1], PREDICATE)
    assert [s["predicate"] for s in statements] == [{"n": 1}, {"n": 2}]


def test_another_predicate_type_is_not_returned(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "other type")
    _attest(client, name, digest, key_pair[0])
    with pytest.raises(TrustError, match="no verified https://spdx.dev/Document attestation"):
        cosign.verify_attestations(client, digest, key_pair[1], "https://spdx.dev/Document")


def test_missing_attestations_are_refused(repo, key_pair):
    client, _ = repo
    digest = cosign_support.push_image(client, "no attestations")
    with pytest.raises(TrustError, match="has no attestations in cosign's format") as err:
        cosign.verify_attestations(client, digest, key_pair[1], PREDICATE)
    assert digest in str(err.value)


def test_a_tampered_envelope_is_refused(repo, key_pair):
    """A modified envelope (payload changed, signature kept) pushed as the layer."""
    client, name = repo
    digest = cosign_support.push_image(client, "tampered attestation")
    _attest(client, name, digest, key_pair[0], predicate={"tests": "passed"})
    tag = cosign.attestation_tag(digest)
    _, _, manifest = client.manifest(tag)
    envelope = json.loads(client.blob(manifest["layers"][0]["digest"]))
    statement = base64.b64decode(envelope["payload"]).replace(b"passed", b"skipped")
    envelope["payload"] = base64.b64encode(statement).decode()
    data = json.dumps(envelope).encode()
    manifest["layers"][0].update(digest=client.push_blob(data), size=len(data))
    client.put_manifest(tag, cosign.OCI_MANIFEST, json.dumps(manifest).encode())
    with pytest.raises(TrustError, match="payload or type was changed") as err:
        cosign.verify_attestations(client, digest, key_pair[1], PREDICATE)
    assert digest in str(err.value)


def test_an_attestation_about_another_digest_is_refused(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "subject")
    other = "sha256:" + hashlib.sha256(b"another image").hexdigest()
    _attest(client, name, digest, key_pair[0], subject_digest=other)
    with pytest.raises(TrustError, match=f"its subject is another image \\({other}\\)"):
        cosign.verify_attestations(client, digest, key_pair[1], PREDICATE)


def test_an_attestation_by_another_key_is_refused(repo, key_pair):
    client, name = repo
    digest = cosign_support.push_image(client, "attest other key")
    _attest(client, name, digest, _other_key()[0])
    with pytest.raises(TrustError, match="signed by another key"):
        cosign.verify_attestations(client, digest, key_pair[1], PREDICATE)
