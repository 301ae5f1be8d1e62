"""The lint tests really fail: each linter rejects a seeded violation.

run_lint.py is what every `lint.*` test runs; here it is run on small
fixtures named for how they are broken, copied under the file name the tool
expects, and on a clean file of each kind that must pass.
"""

import os
import shutil
import subprocess
import sys

import pytest

HERE = "tools/lint/tests/testdata"
RUNNER = "tools/lint/run_lint.py"
CONFIG = "setup.cfg"


def run_lint(tool, fixture, name, tmp_path):
    """Runs the lint runner on a copy of `fixture` named `name`."""
    target = tmp_path / name
    shutil.copy(os.path.join(HERE, fixture), target)
    return subprocess.run(
        [sys.executable, RUNNER, "--tool", tool, "--config", CONFIG, str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


@pytest.mark.parametrize("tool, fixture, name, finding", [
    ("pyflakes", "unused_import.py.txt", "mod.py", "'os' imported but unused"),
    ("pycodestyle", "long_line.py.txt", "mod.py", "E501"),
    ("pylint", "missing_docstring.py.txt", "mod.py", "missing-function-docstring"),
    ("buildifier", "misformatted.BUILD.txt", "BUILD", "reformat"),
    ("buildifier", "unsorted_deps.bzl.txt", "defs.bzl", "unsorted-dict-items"),
])
def test_seeded_violation_fails_the_lint_test(tool, fixture, name, finding, tmp_path):
    proc = run_lint(tool, fixture, name, tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert finding in proc.stdout
    assert f"lint: {tool} found problems" in proc.stdout


@pytest.mark.parametrize("tool, fixture, name", [
    ("pyflakes", "clean.py.txt", "mod.py"),
    ("pycodestyle", "clean.py.txt", "mod.py"),
    ("pylint", "clean.py.txt", "mod.py"),
    ("buildifier", "clean.BUILD.txt", "BUILD"),
])
def test_clean_file_passes_the_lint_test(tool, fixture, name, tmp_path):
    proc = run_lint(tool, fixture, name, tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "1 files clean" in proc.stdout
