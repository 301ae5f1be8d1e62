"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse protocol.md),
the wrapping of cosign's attestations, signed with ECDSA P-256 / SHA-256.

An envelope is JSON

    {"payloadType": TYPE, "payload": Base64(BODY),
     "signatures": [{"keyid": KEYID, "sig": Base64(SIGNATURE)}]}

and what is signed is not the payload but its pre-authentication encoding,
PAE(TYPE, BODY) = "DSSEv1" SP LEN(TYPE) SP TYPE SP LEN(BODY) SP BODY (lengths
as ASCII decimal byte counts), so a signature binds the type as well as the
body. The ECDSA signature is ASN.1 DER, as Go's crypto/ecdsa (cosign) writes it.
"""

import base64
import binascii
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tools.trust.errors import TrustError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type, payload):
    """DSSE's pre-authentication encoding of (type, body): the bytes that are signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _b64decode(text, what):
    """DSSE allows standard and URL-safe Base64, with or without padding."""
    if not isinstance(text, str):
        raise TrustError(f"the envelope's {what} is not a Base64 string")
    text = text.strip()
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text.encode("ascii"))
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise TrustError(f"the envelope's {what} is not valid Base64") from None


def sign(payload_type, payload, private_key, keyid=""):
    """An envelope (dict) of `payload` (bytes) signed with an ECDSA private key."""
    signature = private_key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def parse(envelope):
    """(payload type, payload bytes, [(keyid, signature bytes)]) of an envelope given as a
    dict, JSON bytes or str; TrustError when it is not one."""
    if isinstance(envelope, (bytes, str)):
        try:
            envelope = json.loads(envelope)
        except ValueError:
            raise TrustError("the DSSE envelope is not JSON") from None
    if not isinstance(envelope, dict):
        raise TrustError("the DSSE envelope is not a JSON object")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str):
        raise TrustError("the DSSE envelope has no payloadType")
    if "payload" not in envelope:
        raise TrustError("the DSSE envelope has no payload")
    payload = _b64decode(envelope["payload"], "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise TrustError("the DSSE envelope has no signatures")
    parsed = []
    for entry in signatures:
        if not isinstance(entry, dict) or "sig" not in entry:
            raise TrustError("a signature of the DSSE envelope has no 'sig'")
        parsed.append((str(entry.get("keyid") or ""), _b64decode(entry["sig"], "signature")))
    return payload_type, payload, parsed


def verify(envelope, public_key, payload_type=None):
    """(payload type, payload bytes) of an envelope one of whose signatures verifies with
    `public_key`; TrustError naming the reason otherwise. Key ids are hints, not trusted
    (as cosign, which tries its key on every signature). With `payload_type`, the
    envelope must also carry that type."""
    kind, payload, signatures = parse(envelope)
    message = pae(kind, payload)
    for _, signature in signatures:
        try:
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        break
    else:
        raise TrustError(f"no signature of the DSSE envelope ({len(signatures)} signature(s), "
                         f"payload type {kind!r}) verifies with this key: it was signed by "
                         f"another key, or its payload or type was changed after signing")
    if payload_type is not None and kind != payload_type:
        raise TrustError(f"the DSSE envelope's payload type is {kind!r}, not {payload_type!r}")
    return kind, payload
