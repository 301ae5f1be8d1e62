"""Signing keys in cosign's file format, so cosign can use ours and we can use its.

`cosign generate-key-pair` writes `cosign.key` and `cosign.pub`:

- `cosign.pub`: the public key as PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
- `cosign.key`: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 2.x and later;
  1.x wrote `ENCRYPTED COSIGN PRIVATE KEY`, which cosign still reads, and so
  do we) whose body is the JSON of go-securesystemslib's `encrypted` package:

      {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
               "salt": <base64, 32 bytes>},
       "cipher": {"name": "nacl/secretbox", "nonce": <base64, 24 bytes>},
       "ciphertext": <base64>}

  The ciphertext is nacl/secretbox (XSalsa20-Poly1305) with the 32-byte
  scrypt key of the password, around the PKCS #8 DER of an ECDSA P-256 key.
  Keys are written with N=32768 (go-securesystemslib's "legacy" strength, what
  cosign writes); N=65536 and N=131072 (its "standard" and "OWASP" strengths)
  are read too, as cosign reads them. Other KDF parameters are refused (a file
  could otherwise make the reader spend unbounded memory), as cosign refuses them.

Sources: sigstore/cosign pkg/cosign/keys.go, go-securesystemslib encrypted.
"""

import base64
import binascii
import hashlib
import json
import os

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tools.trust.errors import KeyFileError

# What cosign writes today, and what cosign 1.x wrote (both read).
PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
PEM_TYPES = (PEM_TYPE, LEGACY_PEM_TYPE)
_UNENCRYPTED = ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY")

SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
# (N, r, p) go-securesystemslib's Decrypt accepts: legacy, standard, OWASP.
ACCEPTED_SCRYPT = ((32768, 8, 1), (65536, 8, 1), (131072, 8, 1))
SALT_SIZE = 32
KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE  # 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"


def _pem_blocks(pem):
    """[(type, body bytes)] of the PEM blocks in `pem` (bytes)."""
    blocks = []
    lines = pem.decode("ascii", errors="replace").splitlines()
    kind, body = None, []
    for line in lines:
        line = line.strip()
        if kind is None and line.startswith("-----BEGIN ") and line.endswith("-----"):
            kind, body = line[len("-----BEGIN "):-len("-----")], []
        elif kind is not None and line == f"-----END {kind}-----":
            try:
                blocks.append((kind, base64.b64decode("".join(body), validate=True)))
            except binascii.Error:
                blocks.append((kind, None))
            kind = None
        elif kind is not None and ":" not in line:  # skip RFC 1421 headers
            body.append(line)
    return blocks


def _pem(kind, data):
    text = base64.b64encode(data).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"])
            + "\n").encode("ascii")


def _kdf(password, salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P):
    # scrypt needs 128 * N * r bytes; OpenSSL refuses exactly its default cap, so
    # allow twice that.
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * n * r,
                          dklen=KEY_SIZE)


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _go_json(value):
    """JSON as Go's encoding/json writes it: compact, fields in struct order."""
    return json.dumps(value, separators=(",", ":")).encode("ascii")


def encrypt(plaintext, password):
    """go-securesystemslib's `encrypted.Encrypt`: the JSON document around `plaintext`."""
    salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
    box = nacl.secret.SecretBox(_kdf(password, salt))
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    return _go_json({
        "kdf": {"name": KDF_NAME,
                "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                "salt": _b64(salt)},
        "cipher": {"name": CIPHER_NAME, "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    })


def decrypt(document, password, source="the key"):
    """The plaintext of an `encrypted.Encrypt` document; KeyFileError naming the problem."""
    try:
        data = json.loads(document)
        kdf, cipher = data["kdf"], data["cipher"]
        params = kdf["params"]
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(data["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise KeyFileError(f"{source} is not a cosign private key: its body is not the "
                           f"encrypted-key JSON cosign writes ({type(err).__name__}); "
                           f"make one with `cosign generate-key-pair`") from None
    if kdf.get("name") != KDF_NAME or cipher.get("name") != CIPHER_NAME:
        raise KeyFileError(f"{source}: unknown encryption {kdf.get('name')!r}/"
                           f"{cipher.get('name')!r} (cosign keys use {KDF_NAME}/{CIPHER_NAME})")
    strength = (params.get("N"), params.get("r"), params.get("p")) \
        if isinstance(params, dict) else None
    if strength not in ACCEPTED_SCRYPT:
        raise KeyFileError(f"{source}: unexpected scrypt parameters {params} (cosign keys use "
                           f"N=32768, 65536 or 131072 with r=8, p=1; others are refused, as "
                           f"cosign refuses them)")
    if len(nonce) != NONCE_SIZE:
        raise KeyFileError(f"{source}: the nonce is {len(nonce)} bytes, not {NONCE_SIZE}")
    try:
        box = nacl.secret.SecretBox(_kdf(password, salt, *strength))
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise KeyFileError(f"{source}: wrong password (the key does not decrypt with the "
                           f"password given; cosign reads it from COSIGN_PASSWORD)") from None


def generate_key_pair(password):
    """(private PEM, public PEM) bytes of a new ECDSA P-256 key, in cosign's format:
    what `cosign generate-key-pair` writes to cosign.key and cosign.pub."""
    if not isinstance(password, bytes):
        raise TypeError("password must be bytes")
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return _pem(PEM_TYPE, encrypt(pkcs8, password)), public


def load_private_key(pem, password, source="the key"):
    """The ECDSA private key of a cosign key file's bytes; KeyFileError saying why not
    (not PEM, not a cosign key, an unencrypted key, wrong password, not ECDSA P-256)."""
    blocks = _pem_blocks(pem)
    if not blocks:
        raise KeyFileError(f"{source} is not a PEM file; a cosign private key starts with "
                           f"'-----BEGIN {PEM_TYPE}-----'")
    kinds = [kind for kind, _ in blocks]
    body = next((data for kind, data in blocks if kind in PEM_TYPES), None)
    if body is None and any(k.endswith("PRIVATE KEY") for k in kinds):
        plain = "an unencrypted" if kinds[0] in _UNENCRYPTED else "a"
        raise KeyFileError(f"{source} is {plain} {kinds[0]!r} PEM, not a cosign key: cosign "
                           f"keys are password-encrypted ({PEM_TYPE}); convert it with "
                           f"`cosign import-key-pair --key FILE`")
    if body is None:
        raise KeyFileError(f"{source} holds a {kinds[0]!r} PEM block, not a cosign private "
                           f"key ({PEM_TYPE}); a public key (cosign.pub) cannot sign")
    der = decrypt(body, password, source)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"{source}: the decrypted key is not PKCS #8") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{source}: a {type(key).__name__} key; only ECDSA P-256 keys "
                           f"(cosign's default) are supported")
    return key


def load_public_key(pem, source="the public key"):
    """The ECDSA P-256 public key of a PEM `PUBLIC KEY` (cosign.pub)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"{source} is not a PEM public key (a cosign.pub starts with "
                           f"'-----BEGIN PUBLIC KEY-----')") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{source}: a {type(key).__name__}; only ECDSA P-256 keys "
                           f"(cosign's default) are supported")
    return key


def public_pem(public_key):
    """PEM `PUBLIC KEY` bytes of a public key (as cosign.pub)."""
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key):
    """sha256 hex of the public key's DER SubjectPublicKeyInfo: names the key in logs and
    DSSE keyids. Accepts a private key too (its public half)."""
    if hasattr(public_key, "public_key"):
        public_key = public_key.public_key()
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
