"""Translates one .pyx to C for Bazel, deterministically.

Cython writes the path it was given into the C file (comments, traceback
tables), so the action passes workspace-relative paths and this wrapper
refuses output that still names the execution root. PYTHONHASHSEED is fixed
by the rule.
"""

import os

from Cython.Compiler import Main  # pylint: disable=import-error

from tools import cli


def main(argv=None):
    """Entry point (the `_cythonize` rule of defs.bzl runs it)."""
    parser = cli.parser(__doc__)
    parser.add_argument("src", help="the .pyx file, relative to the workspace root")
    parser.add_argument("out", help="the C file to write")
    parser.add_argument("include", nargs="*", help="folders of the .pxd files it cimports")
    args = parser.parse_args(argv)
    src, out = args.src, args.out
    if os.path.isabs(src):
        parser.error(f"{src} must be relative to the workspace root")
    options = Main.CompilationOptions(
        Main.default_options,
        output_file=out,
        language_level=3,
        include_path=args.include,
        timestamps=False,
    )
    result = Main.compile(src, options)
    if result.num_errors:
        raise cli.Failure(f"Cython reported {result.num_errors} error(s) in {src}")
    with open(out, encoding="utf-8") as generated:
        text = generated.read()
    execroot = os.getcwd()
    if execroot in text:
        raise cli.Failure(f"{out} contains the absolute path {execroot}; "
                          "the output would differ between checkouts")
    return 0


if __name__ == "__main__":
    cli.run(main)
