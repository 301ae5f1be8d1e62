"""Runs inside the image: the lint and test stages.

    python3 tools/image/check.py lint    pyflakes, pycodestyle, pylint
    python3 tools/image/check.py test    the pytest suites of the shipped code

The same tools and settings as `bazel test //...` (tools/check_settings.py,
setup.cfg), run on the files as they are in the image, by the image's
interpreter.
"""

import glob
import os
import subprocess
import sys

# Run as a script from the repository root in the image: the repository's own
# modules (shipped by tools/image/build.py) import from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools import check_settings  # noqa: E402  pylint: disable=wrong-import-position

LINTED = ("inference", "models", "serving", "services", "tools/image")
# The tests of the shipped code. Training (models/) is tested by Bazel only: it
# needs scikit-learn, which no image holds. Tests that need a redis-server
# (a host program, not part of the image) are deselected by name.
# Four more stay with Bazel, which runs them on the same interpreter build:
# Triton's client (a dev-only package the image's dev stage does not hold),
# the slow-client load test, all fuzz shards but the smallest, and the
# release checks of a service's release data (they drive tools/release, a host
# program the image does not ship).
# Every service's tests: patterns, so that no model is named here.
TESTED = ("inference/tests", "serving/tests", "services/*/tests")
DESELECT = "not redis and (not shard_ or shard_service)"
IGNORED = ("services/*/tests/test_tritonclient.py", "services/*/tests/test_slow_clients.py",
           "services/*/tests/test_release_checks.py")


def _matches(patterns, keep):
    """The paths `patterns` match, in order, sorted within each pattern."""
    return [path for pattern in patterns for path in sorted(glob.glob(pattern)) if keep(path)]


def python_files():
    """Every .py file of the linted folders, sorted."""
    found = []
    for top in LINTED:
        for folder, _, files in os.walk(top):
            found += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    return sorted(found)


def run(what, argv):
    """Runs one command; returns its exit status. The `check:` lines are the
    progress the image build shows (tools/image/progress.py)."""
    print(f"check: {what}", flush=True)
    status = subprocess.run(argv, check=False).returncode
    print(f"check: {what}: {'passed' if status == 0 else f'FAILED (exit {status})'}",
          flush=True)
    return status


def lint():
    """All three linters; non-zero if any complains."""
    files = python_files()
    statuses = [run(f"{tool} on {len(files)} files",
                    [sys.executable] + check_settings.linter_args(tool) + files)
                for tool in check_settings.PYTHON_LINTERS]
    return 1 if any(statuses) else 0


def tested():
    """The test folders of this image: MODELSHIP_IMAGE_TESTS (the image spec's `tests`,
    a build argument of the test stage), else TESTED."""
    named = os.environ.get("MODELSHIP_IMAGE_TESTS", "").split()
    return tuple(named) or TESTED


def pytest_argv():
    """The pytest command of the test stage: Bazel's settings, the image's selection."""
    suites = _matches(tested(), os.path.isdir)
    return ([sys.executable, "-m", "pytest", *check_settings.PYTEST_ARGS, "-q", "-k", DESELECT]
            + [f"--ignore={path}" for path in _matches(IGNORED, os.path.isfile)] + suites)


def test():
    """The pytest suites of the shipped code, strict, as under Bazel."""
    suites = _matches(tested(), os.path.isdir)
    return run("pytest " + " ".join(suites), pytest_argv())


def main(argv):
    """Entry point."""
    if argv[1:] == ["lint"]:
        return lint()
    if argv[1:] == ["test"]:
        return test()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
