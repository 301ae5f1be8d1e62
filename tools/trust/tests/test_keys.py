"""cosign's key file: our keys are in cosign's exact format (decrypted here without our
code), cosign's legacy PEM type is read, and bad keys are refused with the reason."""

import base64
import hashlib
import json
import re

import nacl.secret
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tools.trust import keys
from tools.trust.errors import KeyFileError

PASSWORD = b"correct horse battery staple"

# Test data of other implementations (public, Apache-2.0), kept to show that files they
# wrote are read here: a key written by cosign (sigstore/cosign pkg/cosign/keys_test.go,
# `pemsigstorekey`, password "hello") and a document of go-securesystemslib's encrypted
# package at its "standard" strength (encrypted/encrypted_test.go, `kdfVectors`,
# password "supersecret", plaintext the JSON of "reallyimportant").
COSIGN_WRITTEN_KEY = b"""-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
"""
SECURESYSTEMSLIB_STANDARD = (
    b'{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},'
    b'"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},'
    b'"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},'
    b'"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}')


@pytest.fixture(name="pair", scope="module")
def fixture_pair():
    """(private PEM, public PEM) made by our writer (once: scrypt is slow)."""
    return keys.generate_key_pair(PASSWORD)


def _pem_body(pem):
    match = re.match(rb"-----BEGIN ([A-Z ]+)-----\n(.*)\n-----END \1-----\n$", pem, re.S)
    assert match, pem[:80]
    return match.group(1).decode(), base64.b64decode(b"".join(match.group(2).split()))


def test_round_trip_signs_with_the_key_of_the_public_pem(pair):
    private_pem, public_pem = pair
    private = keys.load_private_key(private_pem, PASSWORD)
    public = keys.load_public_key(public_pem)
    signature = private.sign(b"data", ec.ECDSA(hashes.SHA256()))
    public.verify(signature, b"data", ec.ECDSA(hashes.SHA256()))
    assert keys.key_id(public) == keys.key_id(private)


def test_the_private_pem_is_current_cosigns_type_and_json(pair):
    kind, body = _pem_body(pair[0])
    assert kind == "ENCRYPTED SIGSTORE PRIVATE KEY"
    document = json.loads(body)
    # Field for field what go-securesystemslib's encrypted.Encrypt writes, in its order.
    assert list(document) == ["kdf", "cipher", "ciphertext"]
    assert list(document["kdf"]) == ["name", "params", "salt"]
    assert document["kdf"]["name"] == "scrypt"
    assert document["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert list(document["kdf"]["params"]) == ["N", "r", "p"]
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32
    assert document["cipher"] == {"name": "nacl/secretbox",
                                  "nonce": document["cipher"]["nonce"]}
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24
    assert body == json.dumps(document, separators=(",", ":")).encode()  # compact, as Go


def test_the_private_key_decrypts_independently_to_pkcs8(pair):
    """scrypt + nacl secretbox done here by hand, as cosign does: the format, not our
    round trip."""
    document = json.loads(_pem_body(pair[0])[1])
    key = hashlib.scrypt(PASSWORD, salt=base64.b64decode(document["kdf"]["salt"]),
                         n=32768, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
    der = nacl.secret.SecretBox(key).decrypt(base64.b64decode(document["ciphertext"]),
                                             base64.b64decode(document["cipher"]["nonce"]))
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == "secp256r1"
    assert der == private.private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    assert private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) == pair[1]


def test_a_key_encrypted_by_hand_in_cosigns_legacy_pem_type_is_read():
    """A key made without our writer (as cosign 1.x wrote it: ENCRYPTED COSIGN PRIVATE
    KEY) is read."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    salt, nonce = b"s" * 32, b"n" * 24
    box_key = hashlib.scrypt(b"", salt=salt, n=32768, r=8, p=1, maxmem=64 * 1024 * 1024,
                             dklen=32)
    sealed = nacl.secret.SecretBox(box_key).encrypt(der, nonce).ciphertext
    document = json.dumps({"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
                                   "salt": base64.b64encode(salt).decode()},
                           "cipher": {"name": "nacl/secretbox",
                                      "nonce": base64.b64encode(nonce).decode()},
                           "ciphertext": base64.b64encode(sealed).decode()}).encode()
    pem = (b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n" + base64.encodebytes(document)
           + b"-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")
    loaded = keys.load_private_key(pem, b"")  # cosign allows an empty password
    assert keys.key_id(loaded) == keys.key_id(private.public_key())


def test_a_key_written_by_cosign_is_read():
    key = keys.load_private_key(COSIGN_WRITTEN_KEY, b"hello")
    assert key.curve.name == "secp256r1"
    # cosign's JSON is laid out exactly as ours: compact, the same fields in the same order.
    document = _pem_body(COSIGN_WRITTEN_KEY)[1]
    assert document == json.dumps(json.loads(document), separators=(",", ":")).encode()
    assert list(json.loads(document)) == ["kdf", "cipher", "ciphertext"]
    with pytest.raises(KeyFileError, match="wrong password"):
        keys.load_private_key(COSIGN_WRITTEN_KEY, b"hell")


def test_go_securesystemslibs_standard_strength_is_read():
    # The vector is of its Marshal: the plaintext is the JSON (base64) of the bytes.
    plaintext = keys.decrypt(SECURESYSTEMSLIB_STANDARD, b"supersecret")
    assert base64.b64decode(json.loads(plaintext)) == b"reallyimportant"


def test_a_wrong_password_is_refused_by_name(pair):
    with pytest.raises(KeyFileError, match="wrong password") as err:
        keys.load_private_key(pair[0], b"not the password", source="cosign.key")
    assert "cosign.key" in str(err.value)
    assert "not the password" not in str(err.value)


def test_an_unencrypted_private_key_is_refused():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(KeyFileError, match="unencrypted 'PRIVATE KEY'.*import-key-pair"):
        keys.load_private_key(pem, PASSWORD)


def test_a_public_key_is_not_a_private_key(pair):
    with pytest.raises(KeyFileError, match="'PUBLIC KEY' PEM block, not a cosign private"):
        keys.load_private_key(pair[1], PASSWORD)


def test_a_file_that_is_not_pem_is_refused():
    with pytest.raises(KeyFileError, match="not a PEM file"):
        keys.load_private_key(b"just some text", PASSWORD)


def test_a_cosign_pem_whose_body_is_not_the_json_is_refused():
    pem = (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
           + base64.encodebytes(b"garbage") + b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not a cosign private key"):
        keys.load_private_key(pem, PASSWORD)


def test_other_scrypt_parameters_are_refused_as_cosign_refuses_them(pair):
    kind, body = _pem_body(pair[0])
    document = json.loads(body)
    document["kdf"]["params"]["N"] = 1 << 30
    pem = keys._pem(kind, json.dumps(document).encode())  # pylint: disable=protected-access
    with pytest.raises(KeyFileError, match="unexpected scrypt parameters"):
        keys.load_private_key(pem, PASSWORD)


def test_a_public_key_of_another_algorithm_is_refused():
    pem = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyFileError, match="only ECDSA P-256"):
        keys.load_public_key(pem)


def test_a_public_pem_that_is_not_a_key_is_refused():
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        keys.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_key_id_is_the_sha256_of_the_der_public_key(pair):
    public = keys.load_public_key(pair[1])
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert keys.key_id(public) == hashlib.sha256(der).hexdigest()
