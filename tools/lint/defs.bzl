"""`lint`: the lint tests of one package, run by `bazel test //...`.

Every BUILD file ends with

    load("//tools/lint:defs.bzl", "lint")

    lint()

which adds, for the package's own files (subpackages lint themselves):
  - `lint.pyflakes`, `lint.pycodestyle`, `lint.pylint` over its *.py files,
    with the one shared configuration at the root (//:setup.cfg);
  - `lint.buildifier` over its BUILD, *.bzl and WORKSPACE files
    (buildifier in check mode with lint warnings on);
  - `lint`, a test_suite of all four.
"""

load("@pypi_dev//:requirements.bzl", "requirement")
load("@rules_python//python:defs.bzl", "py_test")

# Label() so the macro also works when called from another repository
# (third_party/rules_python lints itself with it).
_RUNNER = str(Label("//tools/lint:run_lint.py"))
_CONFIG = str(Label("//:setup.cfg"))
_BUILDIFIER = str(Label("@buildifier//:buildifier"))
_SETTINGS = str(Label("//tools:check_settings"))
_RUNFILES = requirement("bazel-runfiles")

PY_LINTERS = {
    "pycodestyle": "pycodestyle",
    "pyflakes": "pyflakes",
    "pylint": "pylint",
}

def _lint_test(name, tool, files, deps, data, tags):
    py_test(
        name = name,
        srcs = [_RUNNER],
        main = _RUNNER,
        args = ["--tool", tool, "--config", "$(location %s)" % _CONFIG] +
               ["$(location %s)" % f for f in files],
        data = files + data + [_CONFIG],
        deps = deps + [_SETTINGS, _RUNFILES],
        legacy_create_init = False,
        size = "small",
        tags = ["lint"] + tags,
    )

def lint(name = "lint", srcs = None, starlark = None, tags = []):
    """Declares the lint tests of this package.

    Args:
      name: prefix of the test names and name of the test_suite.
      srcs: Python files to lint; defaults to every *.py file of the package.
      starlark: Bazel files to lint; defaults to BUILD, BUILD.bazel, WORKSPACE
        and *.bzl of the package.
      tags: extra tags for every test.
    """
    if srcs == None:
        srcs = native.glob(["**/*.py"], exclude = ["bazel-*/**"], allow_empty = True)
    if starlark == None:
        starlark = native.glob(
            ["BUILD", "BUILD.bazel", "WORKSPACE", "**/*.bzl"],
            exclude = ["bazel-*/**"],
            allow_empty = True,
        )
    tests = []
    if srcs:
        for tool, pkg in sorted(PY_LINTERS.items()):
            _lint_test(
                name = "%s.%s" % (name, tool),
                tool = tool,
                files = srcs,
                deps = [requirement(pkg)],
                data = [],
                tags = tags,
            )
            tests.append(":%s.%s" % (name, tool))
    if starlark:
        _lint_test(
            name = name + ".buildifier",
            tool = "buildifier",
            files = starlark,
            deps = [],
            data = [_BUILDIFIER],
            tags = tags,
        )
        tests.append(":%s.buildifier" % name)
    native.test_suite(name = name, tests = tests, tags = tags)
