"""Signatures and attestations of images in cosign's format, with a key (no Fulcio, no
Rekor): what `cosign sign --key`, `cosign attest --key` write and what `cosign verify
--key`, `cosign verify-attestation --key`, sigstore's policy-controller and Kyverno's
verifyImages read.

Layout (sigstore/cosign specs/SIGNATURE_SPEC.md, pkg/oci/static, pkg/oci/mutate),
in the image's own repository, without touching the image:

- `sha256-<hex>.sig`: an OCI image manifest, one layer per signature. A layer is
  the simple-signing payload (media type
  `application/vnd.dev.cosign.simplesigning.v1+json`), JSON naming the image
  digest and the repository it was signed for; the base64 ASN.1 ECDSA P-256 /
  SHA-256 signature of the payload's exact bytes is the layer annotation
  `dev.cosignproject.cosign/signature`.
- `sha256-<hex>.att`: the same shape, one layer per attestation: a DSSE envelope
  (`application/vnd.dsse.envelope.v1+json`) around an in-toto Statement whose
  subject is the image digest; annotations `dev.cosignproject.cosign/signature:
  ""` (the signature is inside the envelope) and `predicateType`.
- The config blob is what go-containerregistry's mutate.Append writes for these
  manifests: empty architecture/os, one history entry and one diff_id per layer.

New signatures are appended to the existing manifest (a re-run with the same key
and payload adds nothing), as cosign does.

Registry I/O goes through `client`, an object with the methods of
tools.release.registry.Client (resolve, manifest, put_manifest, push_blob, blob).
"""

import base64
import binascii
import datetime
import hashlib
import json
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tools.trust import dsse
from tools.trust.errors import TrustError

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_TYPE_ANNOTATION = "predicateType"
SIGNATURE_TYPE = "cosign container image signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
# Statements cosign itself wrote before in-toto 1.0; read, never written.
STATEMENT_TYPES = (STATEMENT_V1, "https://in-toto.io/Statement/v0.1")
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as ggcr writes it
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


# --- names and payloads ---------------------------------------------------------

def _hex(digest):
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise TrustError(f"{digest!r} is not an image digest (sha256:<64 hex digits>); "
                         f"sign and verify images by digest, not by tag")
    return digest.split(":", 1)[1]


def signature_tag(digest):
    """The tag of an image's cosign signatures: `sha256-<hex>.sig`."""
    return f"sha256-{_hex(digest)}.sig"


def attestation_tag(digest):
    """The tag of an image's cosign attestations: `sha256-<hex>.att`."""
    return f"sha256-{_hex(digest)}.att"


_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def repository_of(reference):
    """The repository (`host[:port]/path`) of an image reference, as go-containerregistry
    names it (cosign writes that into its payloads): without its digest (`@sha256:...`)
    or tag (`:v1` after the last `/`), the host in lower case, Docker Hub's short names
    completed (`ubuntu` -> `index.docker.io/library/ubuntu`)."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    host, sep, path = name.partition("/")
    if not sep or ("." not in host and ":" not in host and host != "localhost"):
        host, path = "index.docker.io", name  # no registry host: Docker Hub
    host = host.lower()
    if host in _DOCKER_HUB:
        host = "index.docker.io"
        if "/" not in path:
            path = "library/" + path
    return f"{host}/{path}"


def _go_json(value, sort_keys=True):
    """JSON bytes as Go's encoding/json writes them: compact, map keys sorted, UTF-8,
    with <, >, & and U+2028/U+2029 escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def simple_signing_payload(docker_reference, digest, annotations=None):
    """The exact bytes cosign signs: its simple-signing JSON (sigstore/sigstore
    pkg/signature/payload), `optional` being the annotations (`null` without)."""
    _hex(digest)
    return _go_json({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": dict(annotations) if annotations else None,
    })


def in_toto_statement(subject_name, digest, predicate_type, predicate):
    """An in-toto Statement v1 about the image `digest`, serialized deterministically
    (sorted keys, compact, UTF-8): the payload of an attestation's DSSE envelope."""
    return json.dumps({
        "_type": STATEMENT_V1,
        "subject": [{"name": subject_name, "digest": {"sha256": _hex(digest)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


# --- the signature/attestation manifests -----------------------------------------

def _where(client):
    settings = getattr(client, "settings", None)
    if settings is not None and getattr(settings, "registry", None):
        return f"{settings.registry}/{settings.repository}"
    return getattr(settings, "repository", None) or "the repository"


def _existing_layers(client, tag):
    """The layers of the manifest under `tag`, [] when there is none."""
    if client.resolve(tag) is None:
        return []
    _, _, manifest = client.manifest(tag)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise TrustError(f"{_where(client)}:{tag} is not an image manifest (no layers); "
                         f"it is not cosign's signature layout")
    return layers


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _config(layers):
    """The config blob go-containerregistry writes for a manifest of these layers (what
    cosign's AppendSignatures pushes): the layers are uncompressed, so diff_id = digest."""
    return _go_json({
        "architecture": "",
        "created": _now(),
        "history": [{"created": _ZERO_TIME} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        "config": {},
    }, sort_keys=False)


def _put(client, tag, layers):
    """Pushes the config and an OCI manifest of `layers` under `tag`; its digest."""
    config = _config(layers)
    manifest = _go_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config),
                   "digest": client.push_blob(config)},
        "layers": layers,
    }, sort_keys=False)
    return client.put_manifest(tag, OCI_MANIFEST, manifest)


def _layer(media_type, data, digest, annotations):
    return {"mediaType": media_type, "size": len(data), "digest": digest,
            "annotations": dict(sorted(annotations.items()))}


def _ecdsa_verify(public_key, signature_b64, data):
    try:
        signature = base64.b64decode(signature_b64 or "", validate=True)
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, TypeError, InvalidSignature):
        return False
    return True


# --- signatures -------------------------------------------------------------------

def sign_image(client, digest, private_key, identity, annotations=None):
    """Signs the image `digest` for the repository `identity` (`host[:port]/path`; a tag
    or digest in it is dropped, as cosign writes the repository only) and appends the
    signature to its `.sig` manifest; returns that manifest's digest. The image itself
    is not touched. Signing again with the same key, identity and annotations adds
    nothing (as cosign's duplicate detection)."""
    tag = signature_tag(digest)
    if client.resolve(digest) is None:
        raise TrustError(f"cannot sign {_where(client)}@{digest}: no such image in the "
                         f"repository; push it first")
    payload = simple_signing_payload(repository_of(identity), digest, annotations)
    layers = _existing_layers(client, tag)
    public_key = private_key.public_key()
    for layer in layers:
        if (layer.get("mediaType") == SIMPLE_SIGNING_MEDIA_TYPE
                and layer.get("digest") == "sha256:" + hashlib.sha256(payload).hexdigest()
                and _ecdsa_verify(public_key, (layer.get("annotations") or {}).get(
                    SIGNATURE_ANNOTATION), payload)):
            return client.resolve(tag)  # this key already signed this payload
    signature = private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    layers = layers + [_layer(SIMPLE_SIGNING_MEDIA_TYPE, payload, client.push_blob(payload),
                              {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()})]
    return _put(client, tag, layers)


def _payload_claims(payload):
    """(type, digest, docker-reference) of a simple-signing payload, or None."""
    try:
        critical = json.loads(payload)["critical"]
        claims = (critical["type"], critical["image"]["docker-manifest-digest"],
                  critical["identity"]["docker-reference"])
    except (ValueError, KeyError, TypeError):
        return None
    return claims if all(isinstance(claim, str) for claim in claims) else None


def verify_image(client, digest, public_key, identity):
    """The payload (dict) of a cosign signature of the image `digest` that verifies with
    `public_key`, names this digest and was made for the repository `identity` (tags
    ignored on both sides: any tag of the repository is accepted, as containers'
    `matchRepository`; cosign itself checks only the digest). TrustError naming the
    digest and the reason otherwise."""
    tag = signature_tag(digest)
    where = f"{_where(client)}@{digest}"
    if client.resolve(tag) is None:
        raise TrustError(f"{where} is not signed in cosign's format: there is no {tag} "
                         f"signature manifest; sign it (`cosign sign --key` or "
                         f"//tools/trust:cosign sign)")
    layers = [layer for layer in _existing_layers(client, tag)
              if layer.get("mediaType") == SIMPLE_SIGNING_MEDIA_TYPE]
    if not layers:
        raise TrustError(f"{where} is not signed in cosign's format: {tag} holds no "
                         f"simple-signing layer")
    wanted = repository_of(identity)
    other_digests, other_repositories, malformed, malformed_payloads = [], [], 0, 0
    for layer in layers:
        if not isinstance(layer.get("digest"), str) or not _DIGEST.match(layer["digest"]):
            malformed += 1
            continue
        payload = client.blob(layer["digest"])
        signature = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if not _ecdsa_verify(public_key, signature, payload):
            continue
        claims = _payload_claims(payload)
        if claims is None or claims[0] != SIGNATURE_TYPE:
            malformed_payloads += 1
            continue
        _, signed_digest, reference = claims
        if signed_digest != digest:
            other_digests.append(signed_digest)
            continue
        if repository_of(reference) != wanted:
            other_repositories.append(reference)
            continue
        return json.loads(payload)
    if other_digests:
        raise TrustError(f"{where}: the signature by this key in {tag} is for another image, "
                         f"{other_digests[0]} (signatures copied from another image, or a "
                         f"tag moved after signing); refused. Sign this digest")
    if other_repositories:
        raise TrustError(f"{where}: signed for repository {other_repositories[0]}, not "
                         f"{wanted}; refused (sign it for {wanted})")
    if malformed_payloads:
        raise TrustError(f"{where}: the signature by this key in {tag} is not over a cosign "
                         f"simple-signing payload")
    if malformed:
        raise TrustError(f"{where}: {tag} holds malformed signature layers and none by "
                         f"this key that verifies")
    raise TrustError(f"{where}: none of the {len(layers)} signature(s) in {tag} verifies "
                     f"with this key: signed by another key, or the signature does not "
                     f"verify (check that the public key is the signer's cosign.pub)")


# --- attestations -----------------------------------------------------------------

def attach_attestation(client, digest, envelope, predicate_type, require_image=True):
    """Appends a DSSE envelope (dict, as dsse.sign makes) to the image's `.att` manifest
    with cosign's annotations; returns that manifest's digest. An identical envelope
    already attached is not added twice. `require_image=False` attests a digest not
    pushed yet (a digest is a content address: the reproducibility check knows it
    before publish pushes the image)."""
    tag = attestation_tag(digest)
    dsse.parse(envelope)
    if require_image and client.resolve(digest) is None:
        raise TrustError(f"cannot attest {_where(client)}@{digest}: no such image in the "
                         f"repository; push it first")
    # Go's json.Marshal of a DSSE envelope struct: compact, fields in struct order.
    data = _go_json({"payloadType": envelope["payloadType"], "payload": envelope["payload"],
                     "signatures": [{"keyid": s.get("keyid", ""), "sig": s["sig"]}
                                    for s in envelope["signatures"]]}, sort_keys=False)
    layers = _existing_layers(client, tag)
    digest_of_data = "sha256:" + hashlib.sha256(data).hexdigest()
    if any(layer.get("digest") == digest_of_data for layer in layers):
        return client.resolve(tag)
    layers = layers + [_layer(DSSE_MEDIA_TYPE, data, client.push_blob(data),
                              {SIGNATURE_ANNOTATION: "",
                               PREDICATE_TYPE_ANNOTATION: predicate_type})]
    return _put(client, tag, layers)


def verify_attestations(client, digest, public_key, predicate_type):
    """The in-toto statements (dicts) attached to the image `digest` whose envelope
    verifies with `public_key`, whose predicateType is `predicate_type` and whose
    subject names this digest; TrustError naming the digest and the reason when there
    is none."""
    tag = attestation_tag(digest)
    where = f"{_where(client)}@{digest}"
    if client.resolve(tag) is None:
        raise TrustError(f"{where} has no attestations in cosign's format: there is no "
                         f"{tag} manifest; attest it (`cosign attest --key` or "
                         f"//tools/trust:cosign attest)")
    hexdigest = _hex(digest)
    verified, problems = [], []
    for layer in _existing_layers(client, tag):
        if layer.get("mediaType") != DSSE_MEDIA_TYPE:
            continue
        if not isinstance(layer.get("digest"), str) or not _DIGEST.match(layer["digest"]):
            problems.append("a layer has no valid digest")
            continue
        try:
            kind, payload = dsse.verify(client.blob(layer["digest"]), public_key)
        except TrustError as err:
            problems.append(str(err))
            continue
        try:
            statement = json.loads(payload)
            subjects = statement["subject"]
            found_type = statement["predicateType"]
            statement_type = statement["_type"]
        except (ValueError, KeyError, TypeError):
            problems.append("a verified envelope's payload is not an in-toto statement")
            continue
        if kind != dsse.IN_TOTO_PAYLOAD_TYPE or statement_type not in STATEMENT_TYPES:
            problems.append(f"a verified envelope holds {kind!r} / {statement_type!r}, not "
                            f"an in-toto statement")
            continue
        if found_type != predicate_type:
            continue
        names = [s["digest"].get("sha256") for s in subjects if isinstance(s, dict)
                 and isinstance(s.get("digest"), dict)] if isinstance(subjects, list) else []
        if hexdigest not in names:
            problems.append(f"a {predicate_type} statement verified but its subject is "
                            f"another image (sha256:{names[0] if names else '?'})")
            continue
        verified.append(statement)
    if verified:
        return verified
    reason = "; ".join(dict.fromkeys(problems)) or \
        f"no attestation of predicate type {predicate_type} signed by this key"
    raise TrustError(f"{where}: no verified {predicate_type} attestation in {tag}: {reason}")
