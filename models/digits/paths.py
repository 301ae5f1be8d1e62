"""Where the digits pipeline's built files are at run time.

Under `bazel test` and `bazel run`, a target's data dependencies are its
runfiles; rules_python's runfiles library (`bazel-runfiles`) finds them,
from a runfiles folder or from a manifest (what `bazel run` announces). A
target that calls `model_path()` must list //models/digits:model in its
`data`; `dataset_path()` needs //models/digits:dataset.

The production image imports this module but is given its paths: the library
is imported only when a runfile is looked up, so the runtime does not ship it.
Without it (the image's test stage) a file is found in the tree this module
sits in, where the image build puts the built model and data set.
"""

import os

WORKSPACE = "modelship"
MODEL = "models/digits/digits.model"
DATASET = "models/digits/digits_dataset.npy"
CONFIG = "models/digits/config.json"
RELEASE = "models/digits/release/current.json"


def runfile(path):
    """Absolute path of repository file `path` in this process's runfiles, or in the
    tree this module sits in (the image's app folder, where the image's test stage
    finds the built files, and where the library is not shipped)."""
    hint = (f"Run it with `bazel run` or `bazel test`, with the target that builds {path} "
            f"in its `data`.")
    try:
        from runfiles import Runfiles  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        resolver, problem = None, f"no runfiles library here ({err})"
    else:
        resolver = Runfiles.Create()
        problem = "this program has no runfiles"
    if resolver is not None:
        found = resolver.Rlocation(f"{WORKSPACE}/{path}")
        if found and os.path.exists(found):
            return found
        problem = "it is not in the runfiles of this program"
    beside = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "..", "..", path))
    if os.path.exists(beside):
        return beside
    raise FileNotFoundError(f"{path}: {problem}. {hint}")


def model_path():
    """The built model artifact (//models/digits:model)."""
    return runfile(MODEL)


def dataset_path():
    """The built dataset file (//models/digits:dataset)."""
    return runfile(DATASET)
