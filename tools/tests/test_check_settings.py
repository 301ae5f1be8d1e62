"""The host's lint and pytest tests and the image's stages use one set of settings."""

import sys

import pytest

from tools import check_settings
from tools.image import check
from tools.lint import run_lint
from tools.pytest import runner


@pytest.mark.parametrize("tool", check_settings.PYTHON_LINTERS)
def test_bazel_lint_runs_each_linter_with_the_shared_settings(tool):
    assert run_lint.command(tool, "setup.cfg") == (
        [sys.executable] + check_settings.linter_args(tool, "setup.cfg"))


def test_image_lint_runs_every_shared_linter_with_the_shared_settings(monkeypatch):
    commands = []
    monkeypatch.setattr(check, "run", lambda what, argv: commands.append(argv) or 0)
    monkeypatch.setattr(check, "python_files", lambda: ["a.py"])
    assert check.lint() == 0
    assert commands == [[sys.executable] + check_settings.linter_args(tool) + ["a.py"]
                        for tool in check_settings.PYTHON_LINTERS]


def _contains_in_order(argv, expected):
    start = next((i for i in range(len(argv)) if argv[i:i + len(expected)] == expected), None)
    return start is not None


def test_image_pytest_uses_the_shared_pytest_settings():
    assert _contains_in_order(check.pytest_argv(), list(check_settings.PYTEST_ARGS))


def test_bazel_pytest_uses_the_shared_pytest_settings(monkeypatch):
    seen = []
    monkeypatch.setattr(runner.pytest, "main", lambda args: seen.append(args) or 0)
    monkeypatch.setattr(sys, "argv", ["runner.py", "some_test.py"])
    assert runner.main() == 0
    assert _contains_in_order(seen[0], list(check_settings.PYTEST_ARGS))


def test_unknown_linter_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown linter 'flake9'"):
        check_settings.linter_args("flake9")
