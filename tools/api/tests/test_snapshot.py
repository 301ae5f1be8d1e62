"""Recording a release (`bazel run //tools/api:snapshot`): the gate's base, written once.

Proves: the snapshot lands in releases/<info.version>/ with both documents;
taking it again unchanged is fine; a different contract under a version
already released is refused with a one-line fix (raise the version), unless
--force; and the gate then compares with that snapshot.
"""

import json
import pathlib
import shutil
import subprocess
import sys

CONTRACT = pathlib.Path("services/digits")


def _workspace(tmp_path):
    root = tmp_path / "ws"
    (root / "services" / "digits").mkdir(parents=True)
    for name in ("openapi.json", "results.schema.json"):
        shutil.copyfile(CONTRACT / name, root / "services" / "digits" / name)
    return root


def _snapshot(root, *args):
    return subprocess.run([sys.executable, "-m", "tools.api.snapshot", *args],
                          capture_output=True, text=True, check=False,
                          env={"BUILD_WORKSPACE_DIRECTORY": str(root),
                               "PYTHONPATH": ":".join(sys.path)})


def test_snapshot_records_the_contract_under_its_api_version(tmp_path):
    root = _workspace(tmp_path)
    result = _snapshot(root)
    assert result.returncode == 0, result.stderr
    version = json.loads((CONTRACT / "openapi.json").read_text())["info"]["version"]
    release = root / "services" / "digits" / "api" / "releases" / version
    for name in ("openapi.json", "results.schema.json"):
        assert (release / name).read_bytes() == (CONTRACT / name).read_bytes()
    assert _snapshot(root).returncode == 0  # unchanged: taking it again is harmless


def test_a_released_version_is_not_overwritten_without_force(tmp_path):
    root = _workspace(tmp_path)
    assert _snapshot(root).returncode == 0
    current = root / "services" / "digits" / "openapi.json"
    doc = json.loads(current.read_text())
    del doc["paths"]["/v1/predict"]
    current.write_text(json.dumps(doc))
    refused = _snapshot(root)
    assert refused.returncode == 2
    assert "already holds API 1.0 with another openapi.json" in refused.stderr
    assert "Raise API_VERSION" in refused.stderr
    assert refused.stderr.count("\n") == 1
    gate = subprocess.run([sys.executable, "tools/api/breaking.py", "--releases",
                           str(root / "services/digits/api/releases"), "--current",
                           str(root / "services/digits")], capture_output=True, text=True,
                          check=False)
    assert gate.returncode == 1 and "path removed" in gate.stdout
    assert _snapshot(root, "--force").returncode == 0
    saved = json.loads((root / "services/digits/api/releases/1.0/openapi.json").read_text())
    assert "/v1/predict" not in saved["paths"]
