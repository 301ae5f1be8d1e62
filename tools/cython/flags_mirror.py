"""Writes or checks flags.py, the Python mirror of flags.bzl.

    bazel run //tools/cython:flags.update    rewrite tools/cython/flags.py
    bazel test //tools/cython:flags.test     fail when it differs from flags.bzl

The image's dev stage has no Bazel, so it reads the compile flags from the
mirror; flags.bzl stays the one place to change them.
"""

import ast
import os

from tools import cli

BZL = "tools/cython/flags.bzl"
MIRROR = "tools/cython/flags.py"
HEADER = '''"""Generated from tools/cython/flags.bzl: do not edit.

Regenerate with `bazel run //tools/cython:flags.update`;
`bazel test //tools/cython:flags.test` fails when this file is stale.
"""

'''


def read_copts(text):
    """The COPTS list of flags.bzl's text (a Starlark file that is also Python)."""
    for node in ast.parse(text).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "COPTS"):
            value = ast.literal_eval(node.value)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise cli.Failure(f"{BZL}: COPTS must be a list of strings")
            return value
    raise cli.Failure(f"{BZL}: no COPTS = [...] assignment found")


def render(copts):
    """The text of flags.py for `copts`."""
    lines = "".join(f"    {flag!r},\n" for flag in copts)
    return HEADER + "COPTS = (\n" + lines + ")\n"


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def main(argv=None):
    """Entry point."""
    parser = cli.parser(__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true",
                      help="rewrite flags.py in the source tree (under `bazel run`)")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 when flags.py differs from flags.bzl")
    args = parser.parse_args(argv)
    root = cli.workspace_root() if args.write else os.getcwd()
    expected = render(read_copts(_read(os.path.join(root, BZL))))
    if args.write:
        with open(os.path.join(root, MIRROR), "w", encoding="utf-8") as handle:
            handle.write(expected)
        print(f"flags.update: wrote {MIRROR}")
        return 0
    if _read(os.path.join(root, MIRROR)) != expected:
        raise cli.Failure(f"{MIRROR} is stale: run `bazel run //tools/cython:flags.update`")
    print(f"flags.test: {MIRROR} matches {BZL}")
    return 0


if __name__ == "__main__":
    cli.run(main)
