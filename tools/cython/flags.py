"""Generated from tools/cython/flags.bzl: do not edit.

Regenerate with `bazel run //tools/cython:flags.update`;
`bazel test //tools/cython:flags.test` fails when this file is stale.
"""

COPTS = (
    '-O2',
    '-fno-strict-aliasing',
    '-Wno-unused-function',
    '-Wno-unreachable-code',
    '-Wno-psabi',
)
