"""Where the MiniLM pipeline's built and committed files are at run time.

Under `bazel test` and `bazel run`, a target's data dependencies are its
runfiles; rules_python's runfiles library (`bazel-runfiles`) finds them. A
caller lists the files it looks up in its `data` (e.g. //models/minilm:model
for `model_path()`). Without the library or a runfiles tree, a file is looked
for in the tree this module sits in.
"""

import os

WORKSPACE = "modelship"
MODEL = "models/minilm/minilm.model"
REFERENCE = "models/minilm/data/reference.npz"
GATE = "models/minilm/gate.json"
RELEASE = "models/minilm/release/current.json"
OPERATING_POINT = "models/minilm/release/operating_point.json"
CANDIDATES = "models/minilm/candidates.json"


def candidate_model(name):
    """The repository path of a candidate's artifact (//models/minilm:model_<name>)."""
    return f"models/minilm/minilm-{name}.model"


def runfile(path):
    """Absolute path of repository file `path` in this process's runfiles, or in the
    tree this module sits in."""
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
    """The released candidate's artifact (//models/minilm:model)."""
    return runfile(MODEL)
