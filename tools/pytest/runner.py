"""Entry point of every pytest_test: runs pytest on the files it is given."""

import os
import sys

import pytest  # pylint: disable=import-error

from tools import check_settings


def main():
    """Runs pytest strictly; the exit code is the test verdict."""
    args = list(check_settings.PYTEST_ARGS) + ["--rootdir", os.getcwd()]
    # Bazel's per-test temporary folder, not /tmp/pytest-of-<user>: that one is
    # shared by every test on the machine, and pytest's clean-up of another
    # run's leftovers there fails (and -W error turns that into a failure).
    if os.environ.get("TEST_TMPDIR"):
        args += ["--basetemp", os.path.join(os.environ["TEST_TMPDIR"], "pytest")]
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args += ["--junitxml", xml, "-o", "junit_family=xunit2"]
    code = pytest.main(args + sys.argv[1:])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("pytest_test: no tests were collected; a test target must test something",
              file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
