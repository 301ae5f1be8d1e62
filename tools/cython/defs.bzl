"""`cython_extension`: a Cython module built with Bazel's C toolchain.

    load("//tools/cython:defs.bzl", "cython_extension")

    cython_extension(
        name = "_kernels",      # importable as <package>._kernels
        src = "_kernels.pyx",
    )

The .pyx is translated by the pinned Cython (@pypi_build) with a fixed
PYTHONHASHSEED and workspace-relative paths, so the C file is the same in
every checkout; it is then compiled and linked as a shared object against the
headers of the workspace interpreter (@system_python//:headers), the one that
imports it.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")
load("@rules_python//python:defs.bzl", "py_library")
load(":flags.bzl", "COPTS")

def _cythonize_impl(ctx):
    out = ctx.actions.declare_file(ctx.attr.out)
    include_dirs = {f.dirname: True for f in ctx.files.pxds}
    args = ctx.actions.args()
    args.add(ctx.file.src.path)
    args.add(out.path)
    args.add_all(sorted(include_dirs.keys()))
    ctx.actions.run(
        executable = ctx.executable._cython,
        arguments = [args],
        inputs = [ctx.file.src] + ctx.files.pxds,
        outputs = [out],
        env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
        mnemonic = "Cythonize",
        progress_message = "Cythonizing %s" % ctx.file.src.short_path,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

_cythonize = rule(
    implementation = _cythonize_impl,
    attrs = {
        "out": attr.string(mandatory = True),
        "pxds": attr.label_list(allow_files = [".pxd", ".pxi"]),
        "src": attr.label(allow_single_file = [".pyx"], mandatory = True),
        "_cython": attr.label(
            default = Label("//tools/cython:cythonize"),
            executable = True,
            cfg = "exec",
        ),
    },
)

def cython_extension(
        name,
        src,
        pxds = [],
        deps = [],
        cc_deps = [],
        copts = [],
        visibility = None,
        **kwargs):
    """A Python extension module `name` compiled from one .pyx file.

    Args:
      name: module name; the shared object is `<name>.so` in this package, so
        the module imports as `<package path>.<name>`.
      src: the .pyx file.
      pxds: .pxd/.pxi files it cimports (their folders become include paths).
      deps: Python libraries the module imports at run time.
      cc_deps: extra cc_library deps, e.g. C headers a `cdef extern` needs.
      copts: extra C compiler flags, after the shared ones of flags.bzl (which
        the image's build of the same module uses too; -O2 among them).
      visibility: visibility of the py_library.
      **kwargs: passed to the py_library (tags, testonly, ...).
    """
    _cythonize(
        name = name + "_c",
        src = src,
        pxds = pxds,
        out = name + ".c",
        visibility = ["//visibility:private"],
    )
    cc_binary(
        name = name + ".so",
        srcs = [name + "_c"],
        deps = ["@system_python//:headers"] + cc_deps,
        copts = COPTS + copts,
        linkshared = True,
        linkstatic = True,
        visibility = ["//visibility:private"],
    )
    py_library(
        name = name,
        data = [name + ".so"],
        deps = deps,
        visibility = visibility,
        **kwargs
    )
