"""DSSE: the PAE of the spec's worked example, and our envelopes against
securesystemslib's DSSE implementation (an independent one), both ways."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib import dsse as ssl_dsse
from securesystemslib import exceptions as ssl_exceptions
from securesystemslib.signer import CryptoSigner, SSlibKey

from tools.trust import dsse, keys
from tools.trust.errors import TrustError

STATEMENT = b'{"_type":"https://in-toto.io/Statement/v1","predicate":{}}'


@pytest.fixture(name="key", scope="module")
def fixture_key():
    """An ECDSA P-256 key (cosign's default)."""
    return ec.generate_private_key(ec.SECP256R1())


def _ssl_key(public_key):
    """securesystemslib's view of our key, under our key id."""
    return SSlibKey.from_crypto(public_key, keyid=keys.key_id(public_key),
                                scheme="ecdsa-sha2-nistp256")


def test_pae_of_the_specs_worked_example():
    # secure-systems-lab/dsse protocol.md, "Test vectors"/example.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_counts_bytes_not_characters():
    assert dsse.pae("t\u00e9", b"\xff") == b"DSSEv1 3 t\xc3\xa9 1 \xff"


def test_pae_matches_securesystemslibs():
    envelope = ssl_dsse.Envelope(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, {})
    assert envelope.pae() == dsse.pae(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT)


def test_our_envelope_verifies_with_securesystemslib(key):
    ours = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, key,
                     keyid=keys.key_id(key.public_key()))
    assert list(ours) == ["payloadType", "payload", "signatures"]
    envelope = ssl_dsse.Envelope.from_dict(json.loads(json.dumps(ours)))
    accepted = envelope.verify([_ssl_key(key.public_key())], 1)
    assert list(accepted) == [keys.key_id(key.public_key())]
    assert envelope.payload == STATEMENT
    assert envelope.payload_type == dsse.IN_TOTO_PAYLOAD_TYPE


def test_securesystemslibs_envelope_verifies_with_ours(key):
    signer = CryptoSigner(key, _ssl_key(key.public_key()))
    envelope = ssl_dsse.Envelope(STATEMENT, dsse.IN_TOTO_PAYLOAD_TYPE, {})
    envelope.sign(signer)
    document = json.dumps(envelope.to_dict()).encode()
    assert dsse.verify(document, key.public_key()) == (dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT)


def test_securesystemslib_refuses_our_envelope_with_a_changed_payload(key):
    ours = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, key,
                     keyid=keys.key_id(key.public_key()))
    ours["payload"] = base64.b64encode(STATEMENT.replace(b"{}", b'{"x":1}')).decode()
    with pytest.raises(ssl_exceptions.VerificationError):
        ssl_dsse.Envelope.from_dict(ours).verify([_ssl_key(key.public_key())], 1)


def test_a_changed_payload_is_refused(key):
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, key)
    envelope["payload"] = base64.b64encode(STATEMENT + b" ").decode()
    with pytest.raises(TrustError, match="no signature of the DSSE envelope"):
        dsse.verify(envelope, key.public_key())


def test_a_changed_payload_type_is_refused(key):
    """PAE binds the type: the same body under another type does not verify."""
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, key)
    envelope["payloadType"] = "application/json"
    with pytest.raises(TrustError, match="payload or type was changed"):
        dsse.verify(envelope, key.public_key())


def test_another_key_is_refused(key):
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, key)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(TrustError, match="signed by another key"):
        dsse.verify(envelope, other)


def test_one_verifying_signature_among_several_is_enough(key):
    other = ec.generate_private_key(ec.SECP256R1())
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, other)
    envelope["signatures"] += dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, STATEMENT, key)["signatures"]
    assert dsse.verify(envelope, key.public_key())[1] == STATEMENT


def test_an_expected_payload_type_is_checked(key):
    envelope = dsse.sign("application/json", STATEMENT, key)
    with pytest.raises(TrustError, match="not 'application/vnd.in-toto"):
        dsse.verify(envelope, key.public_key(), payload_type=dsse.IN_TOTO_PAYLOAD_TYPE)


def test_url_safe_unpadded_base64_is_read_as_the_spec_allows(key):
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, b"\xfb\xff", key)
    envelope["payload"] = base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")
    assert dsse.verify(envelope, key.public_key())[1] == b"\xfb\xff"


@pytest.mark.parametrize("document, reason", [
    (b"not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'{"payload": "", "signatures": []}', "no payloadType"),
    (b'{"payloadType": "t", "signatures": []}', "no payload"),
    (b'{"payloadType": "t", "payload": "", "signatures": []}', "no signatures"),
    (b'{"payloadType": "t", "payload": "!!", "signatures": [{"sig": ""}]}', "not valid Base64"),
])
def test_malformed_envelopes_are_refused_by_name(key, document, reason):
    with pytest.raises(TrustError, match=reason):
        dsse.verify(document, key.public_key())
