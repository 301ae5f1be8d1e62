"""The inference runtime runs where numpy is not installed (the production image).

A child interpreter is started isolated (-I: no environment, no user site;
-S: no site-packages at all) with a sys.path of the standard library and the
runfiles root only, which holds the inference package and its built Cython
extension but none of the pip packages: numpy cannot be imported there. It
loads the real artifact and serves list batches as the HTTP service does.
"""

import json
import os
import subprocess
import sys

import numpy as np

import inference
from inference import _kernels
from inference.model import Model
from models.digits import paths, records

CHILD = r"""
import importlib.util
import json
import sys

sys.path.insert(0, sys.argv[1])
assert importlib.util.find_spec("numpy") is None, "numpy is importable in the child"

from inference import errors
from inference.model import Model

request = json.load(sys.stdin)
model = Model.load(request["model"], expected_version=request["version"])
rows = request["rows"]
report = {
    "proba": model.predict_proba(rows),
    "top3": model.topk(rows, k=3),
    "nested": model.predict_proba([[row[i:i + 8] for i in range(0, 64, 8)] for row in rows]),
    "empty": model.predict_proba([]),
    "errors": {},
}
bad = {
    "nan": [[float("nan")] * 64],
    "bool": [[True] * 64],
    "ragged": [[0] * 64, [0] * 63],
    "bare image": [0] * 64,
    "not a list": object(),
}
for name, batch in bad.items():
    try:
        model.predict_proba(batch)
    except errors.InputError as err:
        report["errors"][name] = str(err)
report["numpy_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "numpy")
json.dump(report, sys.stdout)
"""


def _runfiles_root():
    """The directory holding the `inference` package (sources and the built extension)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(inference.__file__)))
    assert os.path.dirname(os.path.abspath(_kernels.__file__)) == os.path.join(root, "inference")
    return root


def _run_child(request):
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, _runfiles_root()],
        input=json.dumps(request), capture_output=True, text=True, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_runtime_serves_lists_without_numpy_installed():
    x, y = records.select(records.read(paths.dataset_path()), records.TEST)
    x, y = x[:5], y[:5]
    model = Model.load(paths.model_path())
    expected = model.predict_proba(x)  # this process has numpy: the array path
    assert list(expected.argmax(axis=1)) == list(y)  # known, correctly classified images
    rows = x.astype(int).tolist()

    report = _run_child({"model": paths.model_path(), "version": model.version, "rows": rows})

    assert report["numpy_modules"] == []
    # JSON carries Python floats exactly (repr round-trips), so this compares bits.
    assert np.array_equal(np.array(report["proba"], dtype=np.float32), expected)
    assert report["nested"] == report["proba"]
    assert [[label for label, _ in best] for best in report["top3"]] == \
        [[label for label, _ in best] for best in model.topk(x, k=3)]
    assert [best[0][0] for best in report["top3"]] == [str(label) for label in y]
    assert report["empty"] == []


def test_runtime_without_numpy_refuses_bad_batches_with_the_usual_errors():
    model = Model.load(paths.model_path())
    report = _run_child({"model": paths.model_path(), "version": model.version, "rows": []})
    found = report["errors"]
    assert found["nan"].startswith("batch row 0, pixel 0 (image row 0, column 0) is NaN.")
    assert found["bool"].startswith("batch row 0, pixel 0 (image row 0, column 0) is a bool")
    assert "not a rectangular array" in found["ragged"]
    assert "reshape it to (1, 64)" in found["bare image"]
    assert found["not a list"].startswith("batch has type object; pass a list of rows")
    assert report["numpy_modules"] == []
