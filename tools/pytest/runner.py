"""Entry point of every pytest_test: runs pytest on the files it is given."""

import os
import sys

import pytest  # pylint: disable=import-error


def main():
    """Runs pytest strictly; the exit code is the test verdict."""
    args = [
        "-p", "no:cacheprovider",
        "-W", "error",
        "--strict-markers",
        "--strict-config",
        "-o", "console_output_style=classic",
        "-o", "xfail_strict=true",
        "--rootdir", os.getcwd(),
        "-rfEs",
    ]
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
