"""The image compiles Cython extensions with the flags Bazel uses."""

from tools.cython import flags
from tools.image import finalize


def test_image_compiles_extensions_with_every_shared_flag():
    argv = finalize.gcc_command("/app", "/usr/include/python3.11", "inference/kernels.c")
    missing = [flag for flag in flags.COPTS if flag not in argv]
    assert not missing, f"finalize.py's gcc command lacks {missing} of tools/cython/flags.bzl"


def test_image_build_keeps_paths_workspace_relative():
    argv = finalize.gcc_command("/app", "/inc", "inference/kernels.c")
    assert "-ffile-prefix-map=/app=." in argv
    assert argv[-3:] == ["-o", "inference/kernels.so", "inference/kernels.c"][-3:]
