"""The model artifact's own signature: OpenSSF model-signing, key mode, offline.

    bundle = sign_model("digits.model", private_key_pem, password)   # bytes (JSON)
    verified = verify_model("digits.model", bundle, public_key_pem)  # or TrustError
    verified == {"file": "digits.model", "sha256": "<hex of the file>", ...}

The bundle is a Sigstore bundle (v0.3 JSON) holding a DSSE envelope whose in-toto
statement names the model file and its sha256, signed with an elliptic-curve key:
the same ECDSA P-256 key that signs the images (cosign's key, decrypted). It needs
no network, no Fulcio certificate and no Rekor entry. Any model-signing verifier
accepts it:

    model_signing verify key MODEL --signature B --public_key cosign.pub

It travels beside the image, not inside it: ECDSA signatures are randomized (two
signatures of the same model differ), so a bundle inside the image would break
its bit-for-bit reproducibility; README.md ("Model signatures") has the figures.

What this wrapper adds to model-signing:
- model-signing holds the model's name to be "only informative" (a bundle for
  `a.model` verifies `b.model` with the same bytes); here the name must match.
- One model file, not a folder: modelship ships one self-describing artifact.
  A symbolic link is followed (Bazel's runfiles are links), and the name checked
  is the one the caller gives.
- Keys as bytes or `cryptography` objects; model-signing reads paths, so the key
  goes to a private temporary file, re-encrypted with a one-time password that
  never leaves this process, and removed afterwards.
- Every refusal is a TrustError naming the model file and the reason.
"""

import base64
import binascii
import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import sys
import tempfile
import types

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tools.trust.errors import KeyFileError, TrustError

BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# The curves model-signing signs with (Sigstore's); cosign's keys are P-256.
CURVES = ("secp256r1", "secp384r1", "secp521r1")
# cosign's encrypted private key PEM types (tools/trust/keys.py reads them).
COSIGN_PEM_TYPES = (b"ENCRYPTED SIGSTORE PRIVATE KEY", b"ENCRYPTED COSIGN PRIVATE KEY")


def _model_signing():
    """The model_signing package, imported on first use (it takes a while).

    model-signing 1.1.1 imports pyOpenSSL (`from OpenSSL import crypto`, for its
    certificate mode) without declaring it as a dependency, so a locked install
    of its declared closure cannot import it (and a host's pyOpenSSL, which a
    py_binary may see, can be too old for the locked cryptography). Key mode never
    touches it: unless OpenSSL is already imported, the import sees a placeholder
    that fails if used, gone from sys.modules afterwards.
    """
    if "model_signing" in sys.modules:
        return sys.modules["model_signing"]
    placeholder = None if "OpenSSL" in sys.modules else _openssl_placeholder()
    try:
        import model_signing  # pylint: disable=import-outside-toplevel
    finally:
        if placeholder is not None:
            for name, module in placeholder.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
    return model_signing


def _openssl_placeholder():
    def unavailable(name):
        raise TrustError(f"pyOpenSSL is not installed (model-signing's certificate mode "
                         f"needs OpenSSL.crypto.{name}); key mode does not")

    crypto = types.ModuleType("OpenSSL.crypto")
    crypto.__getattr__ = unavailable
    package = types.ModuleType("OpenSSL")
    package.crypto = crypto
    package.__path__ = []
    modules = {"OpenSSL": package, "OpenSSL.crypto": crypto}
    sys.modules.update(modules)
    return modules


# --- keys ----------------------------------------------------------------------


def _private_key(private_key, password):
    """An EC private key object from PEM bytes (PKCS #8 or SEC1, encrypted or not,
    or cosign's encrypted format) or from an EC private key object."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        key = private_key
    elif isinstance(private_key, (bytes, bytearray)):
        key = _load_private_pem(bytes(private_key), password)
    else:
        raise TypeError(f"private_key: PEM bytes or a cryptography EC private key, "
                        f"not {type(private_key).__name__}")
    if key.curve.name not in CURVES:
        raise KeyFileError(f"the signing key is on curve {key.curve.name}; model-signing "
                           f"signs with {', '.join(CURVES)} (cosign's keys are secp256r1)")
    return key


def _load_private_pem(pem, password):
    if password is not None and not isinstance(password, (bytes, bytearray)):
        raise TypeError("password: bytes or None")
    if any(b"-----BEGIN " + kind + b"-----" in pem for kind in COSIGN_PEM_TYPES):
        try:
            from tools.trust import keys  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise KeyFileError("the signing key is in cosign's encrypted format, and "
                               "tools.trust.keys (which decrypts it) is not a dependency "
                               "of this program; pass the decrypted key object "
                               "instead") from None
        return keys.load_private_key(pem, bytes(password or b""), "the signing key")
    try:
        # An empty password (COSIGN_PASSWORD="") means none for a plain PEM key.
        key = serialization.load_pem_private_key(pem, bytes(password) if password else None)
    except TypeError as err:
        # cryptography: "Password was not given but private key is encrypted", or
        # the reverse. Its wording names no secret.
        raise KeyFileError(f"the signing key: {err}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError("the signing key is not a readable PEM private key, or the "
                           "password is wrong (an ECDSA key as PKCS #8 or SEC1 PEM, or "
                           "cosign's encrypted key, is expected)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"the signing key is a {type(key).__name__}; model-signing's "
                           f"key mode signs with an elliptic-curve (ECDSA) key")
    return key


def _public_key(public_key):
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        key = public_key
    elif isinstance(public_key, (bytes, bytearray)):
        try:
            key = serialization.load_pem_public_key(bytes(public_key))
        except (ValueError, UnsupportedAlgorithm):
            raise KeyFileError("the public key is not a PEM public key (cosign.pub starts "
                               "with '-----BEGIN PUBLIC KEY-----')") from None
    else:
        raise TypeError(f"public_key: PEM bytes or a cryptography EC public key, "
                        f"not {type(public_key).__name__}")
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
        raise KeyFileError(f"the public key is a {type(key).__name__}; model signatures "
                           f"are ECDSA on {', '.join(CURVES)}")
    return key


def key_hint(public_key):
    """What a model-signing bundle names its key by: sha256 hex of the public key's
    PEM SubjectPublicKeyInfo (not the DER that cosign's key ids hash)."""
    if hasattr(public_key, "public_key"):
        public_key = public_key.public_key()
    pem = public_key.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


@contextlib.contextmanager
def _scratch():
    """A private folder (0700) for the files model-signing reads; removed after."""
    folder = tempfile.mkdtemp(prefix="modelship-model-signature-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


# --- the model -----------------------------------------------------------------


def _model_file(model_path):
    """(name as given, real path) of a model file; TrustError when it is none."""
    model_path = os.fspath(model_path)
    name = os.path.basename(os.path.normpath(model_path))
    if not os.path.exists(model_path):
        raise TrustError(f"model {model_path}: no such file")
    if os.path.isdir(model_path):
        raise TrustError(f"model {model_path}: a folder; a modelship model is one artifact "
                         f"file (give the file, e.g. /opt/modelship/model/<file>)")
    real = os.path.realpath(model_path)
    if not os.path.isfile(real):
        raise TrustError(f"model {model_path}: not a regular file")
    return name, real


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _link_as(scratch, name, real):
    """`scratch/model/<name>` pointing at the real file, so model-signing names the
    model as the caller does even where the caller's path is a link (runfiles)."""
    folder = os.path.join(scratch, "model")
    os.mkdir(folder)
    link = os.path.join(folder, name)
    os.symlink(real, link)
    return link


def _hashing_config(ms):
    # sha256 per file (model-signing's default), following the one link _link_as made.
    # Both switches: Config.hash() resets the serializer's to the Config's own.
    return ms.hashing.Config().use_file_serialization(
        hashing_algorithm="sha256", allow_symlinks=True).set_allow_symlinks(True)


def sign_model(model_path, private_key, password=None):
    """Signs one model file; returns the Sigstore bundle's JSON bytes.

    Args:
      model_path: the model artifact file (a link is followed; the bundle names the
        file by the last component of this path).
      private_key: PEM bytes of an ECDSA key (PKCS #8 or SEC1, optionally encrypted
        with `password`; cosign's encrypted key when tools.trust.keys is available),
        or an already loaded `cryptography` EC private key (what tools.trust.keys
        returns for cosign.key).
      password: bytes or None; never written anywhere.

    Raises:
      TrustError (KeyFileError for the key) naming the file and the reason.
    """
    name, real = _model_file(model_path)
    key = _private_key(private_key, password)
    ms = _model_signing()
    # model-signing reads the key from a path: hand it a copy encrypted with a
    # password that exists only in this process, in a 0700 folder removed after.
    one_time = secrets.token_bytes(32)
    encrypted = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(one_time))
    with _scratch() as scratch:
        key_path = os.path.join(scratch, "key.pem")
        bundle_path = os.path.join(scratch, "bundle.json")
        _write_private(key_path, encrypted)
        link = _link_as(scratch, name, real)
        try:
            config = ms.signing.Config().use_elliptic_key_signer(
                private_key=key_path, password=one_time)
            os.unlink(key_path)
            config.set_hashing_config(_hashing_config(ms)).sign(link, bundle_path)
        except (OSError, ValueError) as err:
            raise TrustError(f"model {model_path}: model-signing could not sign it: "
                             f"{err}") from None
        with open(bundle_path, "rb") as stream:
            return stream.read()


# --- verification --------------------------------------------------------------


def _parse_bundle(model_path, bundle):
    """The bundle's JSON and its (still unverified) statement; TrustError if damaged."""
    if not isinstance(bundle, (bytes, bytearray)):
        raise TypeError(f"bundle: bytes, not {type(bundle).__name__}")

    def damaged(reason):
        return TrustError(f"model {model_path}: the signature bundle is damaged: {reason} "
                          f"(sign the model again: model_signature sign)")

    try:
        document = json.loads(bytes(bundle))
    except (UnicodeDecodeError, ValueError) as err:
        raise damaged(f"not JSON ({err})") from None
    if not isinstance(document, dict):
        raise damaged("not a JSON object")
    media_type = document.get("mediaType")
    if not isinstance(media_type, str) or not media_type.startswith(BUNDLE_MEDIA_TYPE_PREFIX):
        raise damaged(f"mediaType {media_type!r} is not a Sigstore bundle's")
    envelope = document.get("dsseEnvelope")
    if not isinstance(envelope, dict) or not envelope.get("signatures"):
        raise damaged("no DSSE envelope with a signature (not a model-signing key-mode "
                      "bundle)")
    try:
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
    except (binascii.Error, TypeError, ValueError) as err:
        raise damaged(f"the envelope's payload is not base64 JSON ({err})") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise damaged("the payload is not an in-toto statement")
    return document, statement


def _key_named(document):
    """The key hint a bundle names (unverified), or None."""
    material = document.get("verificationMaterial")
    public = material.get("publicKey") if isinstance(material, dict) else None
    return public.get("hint") if isinstance(public, dict) else None


def _signed_file(statement):
    """(subject name, sha256 of the file) a model-signing statement names, or Nones."""
    subjects = statement.get("subject") or [{}]
    name = subjects[0].get("name") if isinstance(subjects[0], dict) else None
    predicate = statement.get("predicate") or {}
    resources = predicate.get("resources") if isinstance(predicate, dict) else None
    digest = None
    if isinstance(resources, list) and len(resources) == 1 and isinstance(resources[0], dict):
        if resources[0].get("name") == "." and resources[0].get("algorithm") == "sha256":
            digest = resources[0].get("digest")
    return name, digest


def verify_model(model_path, bundle, public_key):
    """Checks that `bundle` is a signature of this model file by this key.

    Args:
      model_path: the model artifact file, named as it was signed.
      bundle: the Sigstore bundle JSON bytes sign_model returned.
      public_key: PEM bytes of the public key (cosign.pub) or a `cryptography` EC
        public key.

    Returns:
      What was verified: {"file": name, "sha256": hex digest of the file the bundle
      names, "key": the key's model-signing hint (sha256 of its PEM),
      "predicate_type": ..., "media_type": ...}.

    Raises:
      TrustError naming the model file and why: the model's bytes differ from the
      signed ones, another key signed it, it was signed for another file name, the
      bundle is damaged.
    """
    name, real = _model_file(model_path)
    key = _public_key(public_key)
    document, claimed = _parse_bundle(model_path, bundle)
    hint = key_hint(key)
    named = _key_named(document)
    if named and named != hint:
        raise TrustError(f"model {model_path}: signed by another key (the bundle names key "
                         f"{named}, the key given is {hint})")
    ms = _model_signing()
    with _scratch() as scratch:
        key_path = os.path.join(scratch, "key.pub")
        bundle_path = os.path.join(scratch, "bundle.json")
        with open(key_path, "wb") as out:
            out.write(key.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo))
        with open(bundle_path, "wb") as out:
            out.write(bytes(bundle))
        link = _link_as(scratch, name, real)
        # The hashing is ours, not guessed from the bundle: model-signing 1.1.1's
        # guess drops the bundle's allow_symlinks, and a bundle of ours always
        # hashes one file by sha256 (checked below).
        config = ms.verifying.Config().use_elliptic_key_verifier(
            public_key=key_path).set_hashing_config(_hashing_config(ms))
        try:
            # model-signing prints a warning to stdout for bundles without a key hint.
            with contextlib.redirect_stdout(io.StringIO()):
                config.verify(link, bundle_path)
        except InvalidSignature:
            raise TrustError(f"model {model_path}: the bundle's signature does not verify "
                             f"with the key given (key {hint}): signed by another key, or "
                             f"the bundle was altered") from None
        except Exception as err:  # pylint: disable=broad-exception-caught
            # model-signing raises ValueError for a content mismatch, and whatever
            # its parsers raise for a damaged bundle; every one is a refusal.
            raise _explain(model_path, real, claimed, err) from None
    signed_name, digest = _signed_file(claimed)
    if signed_name != name:
        raise TrustError(f"model {model_path}: the bundle was signed for the file "
                         f"{signed_name!r}, not {name!r} (model-signing treats the name as "
                         f"informative; modelship does not: verify the file it was made "
                         f"for)")
    if digest is None or claimed.get("predicateType") != PREDICATE_TYPE:
        raise TrustError(f"model {model_path}: the bundle does not sign one file by sha256 "
                         f"(sign it with model_signature sign)")
    return {
        "file": name,
        "sha256": digest,
        "key": hint,
        "predicate_type": claimed["predicateType"],
        "media_type": document["mediaType"],
    }


def _explain(model_path, real, claimed, err):
    text = str(err)
    if text.startswith("Signature mismatch"):
        _, signed = _signed_file(claimed)
        return TrustError(f"model {model_path}: its bytes are not the signed ones (sha256 "
                          f"{_file_sha256(real)}, the bundle signs {signed}): the model was "
                          f"changed or replaced; do not serve it")
    if text.startswith("Key mismatch"):
        return TrustError(f"model {model_path}: signed by another key ({text})")
    return TrustError(f"model {model_path}: the signature bundle does not verify: "
                      f"{type(err).__name__}: {text}")
