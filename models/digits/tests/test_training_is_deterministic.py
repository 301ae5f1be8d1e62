"""Training is reproducible: the same sources, config and data give the same bytes.

Runs train.py twice in fresh processes (as the Bazel genrule does) with the
code revision computed by its documented definition, and compares both outputs
with each other and with the artifact Bazel built.
"""

import hashlib
import os
import subprocess
import sys

import pytest

from models.digits import paths

# The training code revision's inputs, in the documented order
# (models/digits/README.md; REVISION_INPUTS in models/digits/BUILD).
REVISION_INPUTS = [
    "models/digits/train.py",
    "models/digits/config.py",
    "models/digits/metrics.py",
    "models/digits/records.py",
    "inference/artifact.py",
    "inference/errors.py",
    "inference/reference.py",
    paths.CONFIG,
    paths.DATASET,
]


def _train(out):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run(
        [sys.executable, "-m", "models.digits.train", "--dataset", paths.dataset_path(),
         "--config", paths.runfile(paths.CONFIG), "--out", str(out),
         "--revision-inputs", *[paths.runfile(f) for f in REVISION_INPUTS]],
        check=True, env=env, stdout=subprocess.PIPE)
    return out.read_bytes()


@pytest.fixture(name="built", scope="module")
def fixture_built():
    """The bytes of the artifact Bazel built."""
    with open(paths.model_path(), "rb") as src:
        return src.read()


def test_two_training_runs_write_identical_bytes(tmp_path):
    first = _train(tmp_path / "first.model")
    second = _train(tmp_path / "second.model")
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_training_from_source_reproduces_the_built_artifact(tmp_path, built):
    # Equal bytes include the header's code revision, which the genrule computes
    # with sha256sum and train.py here from the same documented definition.
    assert _train(tmp_path / "again.model") == built
