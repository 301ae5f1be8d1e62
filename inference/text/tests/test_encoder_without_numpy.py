"""The encoder runs where numpy cannot be imported (the production image).

A child interpreter is started isolated (-I, -S: no site-packages) with a
sys.path of the standard library and the runfiles root only: it holds the
inference package and the built extension, but no pip package. It loads the
real int8 candidate and embeds token ids; the vectors must equal, bit for bit,
what this process (which has numpy) computes.
"""

import json
import os
import subprocess
import sys

import inference
from inference.text import _encoder
from inference.text.encoder import SentenceEncoder

MODEL = "models/minilm/minilm-int8.model"
SEQUENCES = [[101, 7592, 2088, 102], [101, 1037, 2158, 2003, 5559, 1037, 7997, 1012, 102]]

CHILD = r"""
import importlib.util
import json
import sys

sys.path.insert(0, sys.argv[1])
assert importlib.util.find_spec("numpy") is None, "numpy is importable in the child"

from inference import errors
from inference.text.encoder import SentenceEncoder

request = json.load(sys.stdin)
encoder = SentenceEncoder.load(request["model"])
report = {"hex": [v.tobytes().hex() for v in encoder.embed_ids(request["sequences"])],
          "dimension": encoder.dimension}
try:
    encoder.embed_ids([[101, 10 ** 6, 102]])
except errors.InputError as err:
    report["error"] = str(err)
report["numpy_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "numpy")
json.dump(report, sys.stdout)
"""


def _runfiles_root():
    root = os.path.dirname(os.path.dirname(os.path.abspath(inference.__file__)))
    assert os.path.dirname(os.path.abspath(_encoder.__file__)) == \
        os.path.join(root, "inference", "text")
    return root


def test_encoder_runs_without_numpy_and_gives_the_same_bits():
    model = os.path.abspath(MODEL)
    expected = [v.tobytes().hex() for v in SentenceEncoder.load(model).embed_ids(SEQUENCES)]
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, _runfiles_root()],
        input=json.dumps({"model": model, "sequences": SEQUENCES}), capture_output=True,
        text=True, check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["numpy_modules"] == []
    assert report["dimension"] == 384
    assert report["hex"] == expected
    assert "sequences[0][1] is 1000000, outside the vocabulary" in report["error"]
