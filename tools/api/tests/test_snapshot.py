"""Recording a release (`bazel run //tools/api:snapshot`): the gate's base, written once.

Proves: the snapshot lands in <--releases>/<info.version>/ with the documents
of <--current>, for any service's folders (none is built in); taking it again
unchanged is fine; a different contract under a version already released is
refused with a one-line fix (raise the version), unless --force; and the gate
then compares with that snapshot. The documents are the example service's
real contract, copied under another service's name.
"""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

CONTRACT = pathlib.Path("services/digits")
# Where the workspace of these tests keeps its service's contract and releases.
CURRENT = "services/iris"
RELEASES = "services/iris/api/releases"
FOLDERS = ("--current", CURRENT, "--releases", RELEASES)


def _workspace(tmp_path, names=("openapi.json", "results.schema.json")):
    root = tmp_path / "ws"
    (root / CURRENT).mkdir(parents=True)
    for name in names:
        shutil.copyfile(CONTRACT / name, root / CURRENT / name)
    return root


def _snapshot(root, *args):
    return subprocess.run([sys.executable, "-m", "tools.api.snapshot", *args],
                          capture_output=True, text=True, check=False,
                          env={"BUILD_WORKSPACE_DIRECTORY": str(root),
                               "PYTHONPATH": ":".join(sys.path)})


def test_snapshot_records_the_contract_under_its_api_version(tmp_path):
    root = _workspace(tmp_path)
    result = _snapshot(root, *FOLDERS)
    assert result.returncode == 0, result.stderr
    version = json.loads((CONTRACT / "openapi.json").read_text())["info"]["version"]
    release = root / RELEASES / version
    assert result.stdout == f"snapshot: wrote {RELEASES}/{version}/\n"
    for name in ("openapi.json", "results.schema.json"):
        assert (release / name).read_bytes() == (CONTRACT / name).read_bytes()
    assert _snapshot(root, *FOLDERS).returncode == 0  # unchanged: taking it again is harmless
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.json")) == sorted(
        [f"{CURRENT}/openapi.json", f"{CURRENT}/results.schema.json",
         f"{RELEASES}/{version}/openapi.json", f"{RELEASES}/{version}/results.schema.json"])


def test_a_contract_without_a_results_schema_is_recorded_too(tmp_path):
    root = _workspace(tmp_path, names=("openapi.json",))
    assert _snapshot(root, *FOLDERS).returncode == 0
    assert [p.name for p in (root / RELEASES / "1.0").iterdir()] == ["openapi.json"]


@pytest.mark.parametrize("args, said", [
    (("--releases", RELEASES), "--current"),
    (("--current", CURRENT), "--releases"),
    (("--current", "/etc", "--releases", RELEASES), "--current /etc: give a folder relative"),
    (("--current", CURRENT, "--releases", "../elsewhere"), "--releases ../elsewhere"),
    (("--current", "services/none", "--releases", RELEASES), "does not exist"),
])
def test_folders_must_be_given_and_inside_the_workspace(tmp_path, args, said):
    root = _workspace(tmp_path)
    result = _snapshot(root, *args)
    assert result.returncode == 2
    assert said in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / RELEASES).exists()


def test_a_released_version_is_not_overwritten_without_force(tmp_path):
    root = _workspace(tmp_path)
    assert _snapshot(root, *FOLDERS).returncode == 0
    current = root / CURRENT / "openapi.json"
    doc = json.loads(current.read_text())
    del doc["paths"]["/v1/predict"]
    current.write_text(json.dumps(doc))
    refused = _snapshot(root, *FOLDERS)
    assert refused.returncode == 2
    assert "already holds API 1.0 with another openapi.json" in refused.stderr
    assert "Raise the API version" in refused.stderr
    assert refused.stderr.count("\n") == 1
    gate = subprocess.run([sys.executable, "tools/api/breaking.py", "--releases",
                           str(root / RELEASES), "--current", str(root / CURRENT)],
                          capture_output=True, text=True, check=False)
    assert gate.returncode == 1 and "path removed" in gate.stdout
    assert _snapshot(root, *FOLDERS, "--force").returncode == 0
    saved = json.loads((root / RELEASES / "1.0" / "openapi.json").read_text())
    assert "/v1/predict" not in saved["paths"]
