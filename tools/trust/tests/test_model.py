"""tools/trust/model.py and its CLI: model-signing bundles of one model file."""

import base64
import json
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from models.digits import paths
from tools.trust import model
from tools.trust.errors import KeyFileError, TrustError

PASSWORD = b"correct horse battery staple 4711"
CLI = os.path.join("tools", "trust", "model_signature")


def _private_pem(key, password=PASSWORD):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def _public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(name="key", scope="module")
def fixture_key():
    """The signing key (ECDSA P-256, as cosign's)."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(name="other_key", scope="module")
def fixture_other_key():
    """Someone else's key."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(name="digits", scope="module")
def fixture_digits():
    """The real digits artifact (//models/digits:model), a runfiles link."""
    return paths.model_path()


@pytest.fixture(name="digits_bundle", scope="module")
def fixture_digits_bundle(digits, key):
    """The digits model signed with `key`, from its password-encrypted PEM."""
    return model.sign_model(digits, _private_pem(key), PASSWORD)


@pytest.fixture(name="small_model")
def fixture_small_model(tmp_path):
    """A small model file of our own, free to change."""
    path = tmp_path / "toy.model"
    path.write_bytes(b"MSHP" + bytes(range(256)) * 64)
    return path


def _statement(bundle):
    document = json.loads(bundle)
    return json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))


def _sha256(path):
    return model._file_sha256(path)  # pylint: disable=protected-access


# --- signing and verifying -------------------------------------------------------


def test_the_digits_model_signs_and_verifies(digits, digits_bundle, key):
    verified = model.verify_model(digits, digits_bundle, _public_pem(key))
    assert verified["file"] == os.path.basename(digits)
    assert verified["sha256"] == _sha256(digits)
    assert verified["key"] == model.key_hint(key)


def test_the_bundle_is_a_sigstore_bundle_naming_the_file_and_its_sha256(digits,
                                                                        digits_bundle):
    document = json.loads(digits_bundle)
    assert document["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert document["verificationMaterial"]["tlogEntries"] == []  # offline: no Rekor
    statement = _statement(digits_bundle)
    assert statement["subject"][0]["name"] == os.path.basename(digits)
    assert statement["predicate"]["resources"] == [
        {"algorithm": "sha256", "name": ".", "digest": _sha256(digits)}]


def test_a_temporary_file_signs_with_a_key_object_and_verifies(small_model, key):
    bundle = model.sign_model(small_model, key)
    verified = model.verify_model(small_model, bundle, key.public_key())
    assert verified["file"] == "toy.model"


def test_an_unencrypted_pem_key_signs_without_a_password(small_model, key):
    bundle = model.sign_model(small_model, _private_pem(key, password=None), None)
    assert model.verify_model(small_model, bundle, _public_pem(key))["file"] == "toy.model"


def test_model_signings_own_verifier_accepts_our_bundle(digits, digits_bundle, key,
                                                        tmp_path):
    ms = model._model_signing()  # pylint: disable=protected-access
    (tmp_path / "key.pub").write_bytes(_public_pem(key))
    (tmp_path / "bundle.json").write_bytes(digits_bundle)
    # The file itself (not a link), as a verifier outside modelship would see it.
    copy = tmp_path / os.path.basename(digits)
    shutil.copyfile(digits, copy)
    ms.verifying.Config().use_elliptic_key_verifier(
        public_key=tmp_path / "key.pub").verify(copy, tmp_path / "bundle.json")
    copy.write_bytes(b"x" + copy.read_bytes()[1:])
    with pytest.raises(ValueError, match="Signature mismatch"):
        ms.verifying.Config().use_elliptic_key_verifier(
            public_key=tmp_path / "key.pub").verify(copy, tmp_path / "bundle.json")


def test_model_signings_own_command_line_accepts_our_bundle(digits, digits_bundle, key,
                                                            tmp_path, capsys):
    model._model_signing()  # pylint: disable=protected-access
    from model_signing import _cli  # pylint: disable=import-outside-toplevel
    (tmp_path / "key.pub").write_bytes(_public_pem(key))
    (tmp_path / "bundle.json").write_bytes(digits_bundle)
    copy = tmp_path / os.path.basename(digits)
    shutil.copyfile(digits, copy)
    argv = ["verify", "key", str(copy), "--signature", str(tmp_path / "bundle.json"),
            "--public_key", str(tmp_path / "key.pub")]
    with pytest.raises(SystemExit) as caught:
        _cli.main(argv)
    assert caught.value.code == 0
    assert "Verification succeeded" in capsys.readouterr().out


def test_two_signatures_of_one_model_differ_so_none_can_go_in_the_image(small_model, key):
    # ECDSA draws a random nonce per signature: a bundle inside the image would
    # change the image's digest at every build (README.md, "Model signatures").
    first, second = model.sign_model(small_model, key), model.sign_model(small_model, key)
    assert first != second
    assert _statement(first) == _statement(second)
    for bundle in (first, second):
        model.verify_model(small_model, bundle, key.public_key())


def test_a_linked_model_is_signed_under_the_name_given(small_model, key, tmp_path):
    link = tmp_path / "served.model"
    link.symlink_to(small_model)
    bundle = model.sign_model(link, key)
    assert _statement(bundle)["subject"][0]["name"] == "served.model"
    assert model.verify_model(link, bundle, key.public_key())["file"] == "served.model"


# --- refusals ------------------------------------------------------------------


def test_a_model_with_one_byte_flipped_is_refused(digits, digits_bundle, key, tmp_path):
    tampered = tmp_path / os.path.basename(digits)
    with open(digits, "rb") as stream:
        data = bytearray(stream.read())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(TrustError) as caught:
        model.verify_model(tampered, digits_bundle, _public_pem(key))
    message = str(caught.value)
    assert str(tampered) in message
    assert "not the signed ones" in message
    assert _sha256(digits) in message and _sha256(tampered) in message


def test_a_bundle_by_another_key_is_refused(small_model, key, other_key):
    bundle = model.sign_model(small_model, other_key)
    with pytest.raises(TrustError, match=r"toy\.model: signed by another key"):
        model.verify_model(small_model, bundle, key.public_key())


def test_a_bundle_by_another_key_claiming_ours_is_refused(small_model, key, other_key):
    document = json.loads(model.sign_model(small_model, other_key))
    document["verificationMaterial"]["publicKey"]["hint"] = model.key_hint(key)
    with pytest.raises(TrustError, match="does not verify with the key given"):
        model.verify_model(small_model, json.dumps(document).encode(), key.public_key())


def test_a_bundle_for_another_file_name_is_refused(small_model, key, tmp_path):
    bundle = model.sign_model(small_model, key)
    renamed = tmp_path / "other.model"
    shutil.copyfile(small_model, renamed)
    with pytest.raises(TrustError) as caught:
        model.verify_model(renamed, bundle, key.public_key())
    assert "other.model" in str(caught.value)
    assert "signed for the file 'toy.model'" in str(caught.value)


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b[: len(b) // 2], "not JSON"),
    (lambda b: b"[]", "not a JSON object"),
    (lambda b: b.replace(b"sigstore.bundle", b"something.else"), "not a Sigstore bundle"),
    (lambda b: json.dumps({**json.loads(b), "dsseEnvelope": {}}).encode(), "no DSSE"),
])
def test_a_damaged_bundle_is_refused(small_model, key, damage, reason):
    bundle = model.sign_model(small_model, key)
    with pytest.raises(TrustError, match=reason) as caught:
        model.verify_model(small_model, damage(bundle), key.public_key())
    assert "toy.model" in str(caught.value) and "damaged" in str(caught.value)


def test_a_bundle_model_signing_cannot_read_is_refused(small_model, key):
    document = json.loads(model.sign_model(small_model, key))
    document["verificationMaterial"] = ["not", "an", "object"]
    with pytest.raises(TrustError, match="toy.model: the signature bundle does not verify"):
        model.verify_model(small_model, json.dumps(document).encode(), key.public_key())


def test_a_statement_altered_after_signing_is_refused(small_model, key):
    document = json.loads(model.sign_model(small_model, key))
    statement = _statement(json.dumps(document))
    statement["subject"][0]["name"] = "renamed.model"
    document["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(statement).encode()).decode()
    with pytest.raises(TrustError, match="does not verify with the key given"):
        model.verify_model(small_model, json.dumps(document).encode(), key.public_key())


def test_a_signature_altered_is_refused(small_model, key):
    document = json.loads(model.sign_model(small_model, key))
    signature = document["dsseEnvelope"]["signatures"][0]
    signature["sig"] = base64.b64encode(b"\x00" * 70).decode()
    with pytest.raises(TrustError, match="toy.model"):
        model.verify_model(small_model, json.dumps(document).encode(), key.public_key())


def test_a_missing_model_or_a_folder_is_refused(tmp_path, key):
    with pytest.raises(TrustError, match="no such file"):
        model.sign_model(tmp_path / "absent.model", key)
    with pytest.raises(TrustError, match="a folder"):
        model.sign_model(tmp_path, key)


def test_a_wrong_password_is_refused_without_naming_it(small_model, key):
    with pytest.raises(KeyFileError) as caught:
        model.sign_model(small_model, _private_pem(key), b"wrong password 0815")
    assert "password" in str(caught.value)
    assert "0815" not in str(caught.value) and PASSWORD.decode() not in str(caught.value)


def test_an_encrypted_key_without_a_password_is_refused(small_model, key):
    with pytest.raises(KeyFileError, match="the signing key"):
        model.sign_model(small_model, _private_pem(key), None)


def test_keys_model_signing_cannot_use_are_refused(small_model, key):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(KeyFileError, match="elliptic-curve"):
        model.sign_model(small_model, _private_pem(rsa_key), PASSWORD)
    with pytest.raises(KeyFileError, match="secp192r1"):
        model.sign_model(small_model, ec.generate_private_key(ec.SECP192R1()))
    bundle = model.sign_model(small_model, key)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        model.verify_model(small_model, bundle, b"not a key")
    with pytest.raises(KeyFileError, match="RSAPublicKey"):
        model.verify_model(small_model, bundle, _public_pem(rsa_key))


def test_cosigns_encrypted_key_is_read_through_tools_trust_keys(small_model):
    try:
        from tools.trust import keys  # pylint: disable=import-outside-toplevel
    except ImportError:
        keys = None
    if keys is None:
        pem = (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n"
               b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
        with pytest.raises(KeyFileError, match="tools.trust.keys"):
            model.sign_model(small_model, pem, PASSWORD)
    else:
        private, public = keys.generate_key_pair(PASSWORD)
        bundle = model.sign_model(small_model, private, PASSWORD)
        assert model.verify_model(small_model, bundle, public)["file"] == "toy.model"


# --- no secret left behind ---------------------------------------------------------


def test_the_key_model_signing_reads_is_encrypted_private_and_removed(
        small_model, key, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(model.tempfile, "tempdir", str(scratch))
    written = []
    real_write = model._write_private  # pylint: disable=protected-access

    def spy(path, data):
        real_write(path, data)
        written.append((os.stat(path).st_mode & 0o777,
                        os.stat(os.path.dirname(path)).st_mode & 0o777, data))

    monkeypatch.setattr(model, "_write_private", spy)
    model.sign_model(small_model, _private_pem(key), PASSWORD)
    assert len(written) == 1
    mode, folder_mode, data = written[0]
    assert (mode, folder_mode) == (0o600, 0o700)
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    plain = _private_pem(key, password=None).split(b"\n")[1]
    assert plain not in data
    assert not os.listdir(scratch)


def _cli(*args, password=PASSWORD.decode()):
    env = {k: v for k, v in os.environ.items() if k != "BUILD_WORKING_DIRECTORY"}
    env["COSIGN_PASSWORD"] = password
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, check=False, stdin=subprocess.DEVNULL)


def test_the_cli_signs_and_verifies_with_the_password_from_the_environment(
        small_model, key, tmp_path):
    (tmp_path / "cosign.key").write_bytes(_private_pem(key))
    (tmp_path / "cosign.pub").write_bytes(_public_pem(key))
    bundle = tmp_path / "toy.model.sig.json"
    signed = _cli("sign", "--key", tmp_path / "cosign.key", "--model", small_model,
                  "--out", bundle)
    assert signed.returncode == 0, signed.stderr
    verified = _cli("verify", "--key", tmp_path / "cosign.pub", "--model", small_model,
                    "--bundle", bundle)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["sha256"] == _sha256(small_model)
    key_body = _private_pem(key, password=None).split(b"\n")[1].decode()
    for proc in (signed, verified):
        output = proc.stdout + proc.stderr
        assert PASSWORD.decode() not in output and key_body not in output
        assert "Traceback" not in output


def test_the_cli_refuses_a_tampered_model_in_one_line_with_exit_1(small_model, key,
                                                                  tmp_path):
    (tmp_path / "cosign.pub").write_bytes(_public_pem(key))
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(model.sign_model(small_model, key))
    small_model.write_bytes(small_model.read_bytes() + b"\0")
    proc = _cli("verify", "--key", tmp_path / "cosign.pub", "--model", small_model,
                "--bundle", bundle)
    assert proc.returncode == 1
    assert proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith("model_signature") and "error: model " in line
    assert "toy.model" in line and "not the signed ones" in line


def test_the_cli_refuses_a_wrong_password_without_showing_it(small_model, key, tmp_path):
    (tmp_path / "cosign.key").write_bytes(_private_pem(key))
    proc = _cli("sign", "--key", tmp_path / "cosign.key", "--model", small_model,
                "--out", tmp_path / "b.json", password="not the password 31337")
    assert proc.returncode == 1
    assert "31337" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b.json").exists()


def test_the_cli_takes_no_secret_on_its_command_line():
    proc = subprocess.run([CLI, "sign", "--help"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0
    assert "--password" not in proc.stdout and "COSIGN_PASSWORD" in proc.stdout


def test_the_cli_reports_usage_errors_with_exit_2(tmp_path):
    proc = _cli("verify", "--model", tmp_path / "m")
    assert proc.returncode == 2
    assert "--key" in proc.stderr and "Traceback" not in proc.stderr
