"""The lint and test settings: one definition for the host and the image.

Read by Bazel's lint tests (tools/lint/run_lint.py), Bazel's pytest tests
(tools/pytest/runner.py) and the image's lint and test stages
(tools/image/check.py, which runs from the copied sources; build.py ships
this file). The linters' own configuration stays in setup.cfg, at the
root of both trees.
"""

CONFIG = "setup.cfg"

# Each Python linter, as `python -m <module> <args>` before the files.
PYTHON_LINTERS = ("pyflakes", "pycodestyle", "pylint")


def linter_args(tool, config=CONFIG):
    """The arguments after the interpreter that run `tool` with `config`."""
    if tool == "pyflakes":
        return ["-m", "pyflakes"]
    if tool == "pycodestyle":
        return ["-m", "pycodestyle", f"--config={config}"]
    if tool == "pylint":
        return ["-m", "pylint", f"--rcfile={config}", "--score=n", "--persistent=n",
                "--output-format=parseable"]
    raise ValueError(f"unknown linter {tool!r}; known: {', '.join(PYTHON_LINTERS)}")


# pytest, strictly: warnings are errors, markers and configuration are checked,
# an unexpected pass of an xfail fails, and no cache folder is written (the
# runfiles tree and the image's sources are read-only to the tests).
PYTEST_ARGS = (
    "-p", "no:cacheprovider",
    "-W", "error",
    "--strict-markers",
    "--strict-config",
    "-o", "console_output_style=classic",
    "-o", "xfail_strict=true",
    "-rfEs",
)
