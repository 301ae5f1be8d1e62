"""Where the digits pipeline's built files are at run time.

Under `bazel test` and `bazel run`, a target's data dependencies are its
runfiles; rules_python's runfiles library (`bazel-runfiles`) finds them,
from a runfiles folder or from a manifest (what `bazel run` announces). A
target that calls `model_path()` must list //models/digits:model in its
`data`; `dataset_path()` needs //models/digits:dataset.

The production image imports this module but is given its paths: the library
is imported only when a runfile is looked up, so the runtime does not ship it.
"""

import os

WORKSPACE = "modelship"
MODEL = "models/digits/digits.model"
DATASET = "models/digits/digits_dataset.npy"
CONFIG = "models/digits/config.json"
RELEASE = "models/digits/release/current.json"


def runfile(path):
    """Absolute path of repository file `path` in this process's runfiles."""
    hint = (f"Run it with `bazel run` or `bazel test`, with the target that builds {path} "
            f"in its `data`.")
    try:
        from runfiles import Runfiles  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        raise FileNotFoundError(f"{path}: no runfiles library here ({err}). {hint}") from None
    resolver = Runfiles.Create()
    if resolver is None:
        raise FileNotFoundError(f"{path}: this program has no runfiles. {hint}")
    found = resolver.Rlocation(f"{WORKSPACE}/{path}")
    if not found or not os.path.exists(found):
        raise FileNotFoundError(f"{path} is not in the runfiles of this program. {hint}")
    return found


def model_path():
    """The built model artifact (//models/digits:model)."""
    return runfile(MODEL)


def dataset_path():
    """The built dataset file (//models/digits:dataset)."""
    return runfile(DATASET)
