"""Runs one linter over files for a Bazel lint test (see defs.bzl).

    run_lint.py --tool {pyflakes,pycodestyle,pylint,buildifier} --config setup.cfg FILE...

Exit status 0 when the files are clean, 1 with the findings printed when
they are not, 2 when the linter itself cannot run.
"""

import argparse
import os
import subprocess
import sys

import runfiles  # pylint: disable=import-error

from tools import check_settings

BUILDIFIER_RUNFILE = "buildifier/buildifier"


def find_runfile(path):
    """Locates a runfile of this test (`<repository>/<path>`)."""
    resolver = runfiles.Runfiles.Create()
    found = resolver.Rlocation(path) if resolver else None
    if not found or not os.path.exists(found):
        raise FileNotFoundError(f"runfile {path} not found in this test's runfiles")
    return found


def command(tool, config):
    """The argv that runs `tool` (files are appended by the caller)."""
    if tool == "buildifier":
        return [find_runfile(BUILDIFIER_RUNFILE), "-mode=check", "-lint=warn",
                "-warnings=all"]
    return [sys.executable] + check_settings.linter_args(tool, config)


def main(argv=None):
    """Runs the linter; returns the exit status of the test."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tool", required=True,
                        choices=sorted(check_settings.PYTHON_LINTERS + ("buildifier",)))
    parser.add_argument("--config", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("HOME", os.environ.get("TEST_TMPDIR", "/tmp"))
    try:
        argv_ = command(args.tool, args.config) + args.files
    except FileNotFoundError as err:
        print(f"lint: cannot run {args.tool}: {err}", file=sys.stderr)
        return 2
    proc = subprocess.run(argv_, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, check=False)
    if proc.returncode == 0:
        print(f"lint: {args.tool}: {len(args.files)} files clean")
        return 0
    print(proc.stdout)
    if args.tool == "buildifier":
        print("lint: fix with `buildifier -lint=fix <file>` (formatting and fixable warnings).")
    print(f"lint: {args.tool} found problems in the files above (exit {proc.returncode})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
