"""`pytest_test`: a py_test that runs its sources with pytest, strictly.

    load("//tools/pytest:defs.bzl", "pytest_test")

    pytest_test(
        name = "test_artifact",
        srcs = ["test_artifact.py"],
        deps = ["//inference"],
        data = ["//models/iris:model"],      # whatever the tests read, e.g. a model
    )

Every file in `srcs` is collected (so helpers go in `deps`). Warnings are
errors, markers and config are strict, and no cache folder is written (the
runfiles tree is read-only). Results are written as JUnit XML where Bazel
asks for them.
"""

load("@pypi_dev//:requirements.bzl", "requirement")
load("@rules_python//python:defs.bzl", "py_test")

# Label() so the macro also works when another workspace loads it (it then
# names @modelship's runner, not one of the caller's).
_RUNNER = str(Label("//tools/pytest:runner.py"))
_SETTINGS = str(Label("//tools:check_settings"))

def pytest_test(name, srcs, deps = [], args = [], **kwargs):
    """A test target running `srcs` with pytest.

    Args:
      name: target name; by convention the test file's name without .py.
      srcs: the test files; each is collected by pytest.
      deps: libraries the tests import (pytest itself is added).
      args: extra pytest arguments, e.g. ["-k", "not slow"].
      **kwargs: passed to py_test (data, size, tags, timeout, env, ...).
    """
    py_test(
        name = name,
        srcs = srcs + [_RUNNER],
        main = _RUNNER,
        deps = deps + [d for d in [requirement("pytest"), _SETTINGS] if d not in deps],
        args = ["$(location %s)" % src for src in srcs] + args,
        legacy_create_init = False,
        **kwargs
    )
