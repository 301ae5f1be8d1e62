"""The client SDK wheel (//services/digits/api:client): reproducible, versioned by the API,
installable.

Proves: generating again (outside Bazel, same inputs) gives the wheel Bazel
built byte for byte; the wheel's name, METADATA and RECORD are valid (every
file hashed, entries sorted, fixed times); a version that disagrees with the
contract's info.version stops the build with a one-line message.
"""

import base64
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path("services/digits")
VERSION = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))["info"]["version"]
WHEEL = ROOT / "api" / f"modelship_digits_client-{VERSION}-py3-none-any.whl"
ARGS = ["--openapi", str(ROOT / "openapi.json"), "--package", "digits_client",
        "--distribution", "modelship-digits-client"]


def _generate(out, version=VERSION):
    return subprocess.run([sys.executable, "tools/api/sdk.py", *ARGS, "--version", version,
                           "--out", str(out)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, SOURCE_DATE_EPOCH="315532800"))


def test_generating_again_gives_the_wheel_bazel_built_byte_for_byte(tmp_path):
    out = tmp_path / WHEEL.name
    result = _generate(out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == WHEEL.read_bytes()


def test_the_wheel_is_versioned_by_the_api_and_its_record_is_complete():
    with zipfile.ZipFile(WHEEL) as wheel:
        names = wheel.namelist()
        info = f"modelship_digits_client-{VERSION}.dist-info"
        assert names[-1] == f"{info}/RECORD"
        assert names[:-1] == sorted(names[:-1])
        assert {i.date_time for i in wheel.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        metadata = wheel.read(f"{info}/METADATA").decode()
        assert f"Version: {VERSION}\n" in metadata
        assert "Requires-Dist: httpx" in metadata
        assert "Root-Is-Purelib: true" in wheel.read(f"{info}/WHEEL").decode()
        record = {}
        for line in wheel.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.rsplit(",", 2)
            record[name] = (digest, size)
        for name in names[:-1]:
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert record[name] == (f"sha256={expected.decode()}", str(len(data))), name
        for module in ("digits_client/client.py", "digits_client/api/oip/model_infer.py",
                       "digits_client/api/task/predict.py", "digits_client/models/error.py"):
            assert module in names


def test_a_version_other_than_the_contracts_is_refused(tmp_path):
    result = _generate(tmp_path / "modelship_digits_client-9.9-py3-none-any.whl", "9.9")
    assert result.returncode == 1
    assert result.stderr.startswith(f"sdk: services/digits/openapi.json is API {VERSION} but "
                                    "the wheel would be 9.9")
    assert "Set the `version` of the api_client_wheel target" in result.stderr
    assert result.stderr.count("\n") == 1


def test_package_and_distribution_come_from_the_arguments(tmp_path):
    # Any service's SDK: the names are the target's, none is built in.
    out = tmp_path / f"modelship_iris_client-{VERSION}-py3-none-any.whl"
    result = subprocess.run([sys.executable, "tools/api/sdk.py", "--openapi",
                             str(ROOT / "openapi.json"), "--package", "iris_client",
                             "--distribution", "modelship-iris-client", "--version", VERSION,
                             "--out", str(out)], capture_output=True, text=True, check=False,
                            env=dict(os.environ, SOURCE_DATE_EPOCH="315532800"))
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"modelship_iris_client-{VERSION}.dist-info/METADATA").decode()
    assert "iris_client/client.py" in names
    assert not [name for name in names if "digits" in name]
    assert "Name: modelship-iris-client\n" in metadata
