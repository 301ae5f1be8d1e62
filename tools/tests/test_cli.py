"""tools/cli.py: exit codes, one-line errors, paths from the caller's folder."""

import pytest

from tools import cli


def _exit_status(main, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.run(main, argv)
    return stop.value.code, capsys.readouterr().err


def test_failure_exits_1_with_one_line_and_no_traceback(capsys):
    def main(argv):
        raise cli.Failure(f"nothing to do with {argv}")
    status, err = _exit_status(main, ["x"], capsys)
    assert status == 1
    assert err.endswith("error: nothing to do with ['x']\n") and "Traceback" not in err


def test_os_error_exits_1_naming_the_file(capsys):
    def main(argv):
        del argv
        with open("/nonexistent/input.json", encoding="utf-8"):
            return 0
    status, err = _exit_status(main, [], capsys)
    assert status == 1 and "/nonexistent/input.json" in err


def test_usage_error_exits_2(capsys):
    def main(argv):
        parser = cli.parser("doc")
        parser.add_argument("--known")
        return parser.parse_args(argv) and 0
    status, err = _exit_status(main, ["--unknown"], capsys)
    assert status == 2 and "unrecognized arguments: --unknown" in err


def test_user_path_is_relative_to_where_bazel_run_was_started(monkeypatch):
    monkeypatch.setenv("BUILD_WORKING_DIRECTORY", "/home/me/project")
    assert cli.user_path("dist/out.json") == "/home/me/project/dist/out.json"
    assert cli.user_path("/abs/file") == "/abs/file"


def test_workspace_root_outside_bazel_run_is_a_failure(monkeypatch):
    monkeypatch.delenv("BUILD_WORKSPACE_DIRECTORY", raising=False)
    with pytest.raises(cli.Failure, match="bazel run"):
        cli.workspace_root()
