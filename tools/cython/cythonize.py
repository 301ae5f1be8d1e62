"""Translates one .pyx to C for Bazel, deterministically.

Cython writes the path it was given into the C file (comments, traceback
tables), so the action passes workspace-relative paths and this wrapper
refuses output that still names the execution root. PYTHONHASHSEED is fixed
by the rule.
"""

import os
import sys

from Cython.Compiler import Main  # pylint: disable=import-error


def main(argv):
    """cythonize.py <src.pyx> <out.c> [include dirs...]"""
    src, out = argv[0], argv[1]
    if os.path.isabs(src):
        print(f"cythonize: {src} must be relative to the workspace root", file=sys.stderr)
        return 2
    options = Main.CompilationOptions(
        Main.default_options,
        output_file=out,
        language_level=3,
        include_path=argv[2:],
        timestamps=False,
    )
    result = Main.compile(src, options)
    if result.num_errors:
        return 1
    with open(out, encoding="utf-8") as generated:
        text = generated.read()
    execroot = os.getcwd()
    if execroot in text:
        print(f"cythonize: {out} contains the absolute path {execroot}; "
              "the output would differ between checkouts", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
