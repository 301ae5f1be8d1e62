"""One convention for every command line of this repository.

- `--help` lists every option (argparse, through `parser()`).
- Exit 0 on success, 1 on failure, 2 on a usage error (argparse's own code).
- Failures are one clear line on stderr, `<program>: error: <what>`, with no
  traceback: raise `Failure` (or let an OSError through) and call the entry
  point with `run(main)`.
- Paths a user gives are relative to the directory the command was started
  from: `bazel run` changes into the runfiles tree, so resolve them with
  `user_path()` (it reads BUILD_WORKING_DIRECTORY).
- Commands that rewrite files of the source tree find it with
  `workspace_root()` (BUILD_WORKSPACE_DIRECTORY).

tools/tests/test_cli_convention.py checks every py_binary of the repository
against this (the list is tools/tests/py_binaries.txt).
"""

import argparse
import os
import sys

OK = 0
FAILURE = 1
USAGE = 2


class Failure(Exception):
    """A failure to report as one line, exit status 1, without a traceback."""


def parser(doc, **kwargs):
    """An ArgumentParser whose --help starts with `doc` as written."""
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return argparse.ArgumentParser(description=doc, **kwargs)


def user_path(path):
    """`path` as the caller meant it: relative to where the command was started."""
    if path is None or os.path.isabs(path):
        return path
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd(), path)


def workspace_root():
    """The source tree `bazel run` was started in; a Failure outside `bazel run`."""
    root = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not root:
        raise Failure("run this with `bazel run`: BUILD_WORKSPACE_DIRECTORY is not set")
    return root


def program():
    """The name messages start with."""
    return os.path.basename(sys.argv[0]) or "modelship"


def run(main, argv=None):
    """Calls `main(argv)` and exits with its status, by the convention above."""
    try:
        status = main(argv)
    except Failure as err:
        print(f"{program()}: error: {err}", file=sys.stderr)
        status = FAILURE
    except OSError as err:
        print(f"{program()}: error: {err}", file=sys.stderr)
        status = FAILURE
    except KeyboardInterrupt:
        print(f"{program()}: interrupted", file=sys.stderr)
        status = 130
    sys.exit(OK if status is None else status)
