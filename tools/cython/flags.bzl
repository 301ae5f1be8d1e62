"""The C compiler flags of every Cython extension: the one definition.

Bazel's `cython_extension` (defs.bzl) and the image's dev stage
(tools/image/finalize.py --build-ext) compile the same .pyx files; both read
this list, the image through the generated mirror flags.py:

    bazel run //tools/cython:flags.update   rewrite flags.py from this file
    bazel test //tools/cython:flags.test    fail when flags.py is stale

Keep this file a plain list of strings: flags_mirror.py reads it as data.
"""

COPTS = [
    # Hot loops: Bazel's default fastbuild mode would leave them unoptimised.
    "-O2",
    # Cython's generated C casts between PyObject layouts.
    "-fno-strict-aliasing",
    # Cython emits helpers a module may not use, and code after raise paths.
    "-Wno-unused-function",
    "-Wno-unreachable-code",
    # GCC notes that passing 64-byte vectors changed ABI in GCC 4.6: irrelevant for
    # static inline kernels (inference/text/_encoder_kernels.h), and noise in every build.
    "-Wno-psabi",
]
