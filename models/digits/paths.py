"""Where the digits pipeline's built files are at run time: the one runfiles helper.

Under `bazel test` and `bazel run`, a target's data dependencies sit in its
runfiles tree, at <root>/<workspace name>/<path in the repository>; the root is
$RUNFILES_DIR or $TEST_SRCDIR (set by `bazel test`), else found from where
this module itself sits. A target that calls `model_path()` must list
//models/digits:model in its `data`; `dataset_path()` needs
//models/digits:dataset.
"""

import os

WORKSPACE = "modelship"
MODEL = "models/digits/digits.model"
DATASET = "models/digits/digits_dataset.npy"
CONFIG = "models/digits/config.json"
RELEASE = "models/digits/release/current.json"


def runfile(path):
    """Absolute path of repository file `path` in this process's runfiles tree."""
    roots = [os.path.join(os.environ[variable], WORKSPACE)
             for variable in ("RUNFILES_DIR", "TEST_SRCDIR") if os.environ.get(variable)]
    # Bazel 4's Python launcher sets neither for `bazel run`; this module then
    # sits in the runfiles tree itself, at <root>/<workspace>/models/digits/.
    roots.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    for root in roots:
        candidate = os.path.normpath(os.path.join(root, path))
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        f"{path} is not in the runfiles of this program (looked under {roots}). Run it "
        f"with `bazel run` or `bazel test`, with the target that builds {path} in its `data`.")


def model_path():
    """The built model artifact (//models/digits:model)."""
    return runfile(MODEL)


def dataset_path():
    """The built dataset file (//models/digits:dataset)."""
    return runfile(DATASET)
