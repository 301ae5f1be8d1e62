"""Every py_binary follows tools/cli.py: --help lists the options and exits 0, a
mistyped option exits 2 with a message, and neither prints a traceback."""

import ast
import os
import subprocess

import pytest

BAD_OPTION = "--no-such-option-for-the-cli-test"


def _literal(path, name):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} assigns no {name}")


BINARIES = _literal("tools/tests/py_binaries.bzl", "PY_BINARIES")
WAIVERS = _literal("tools/tests/cli_waivers.bzl", "CLI_WAIVERS")
CHECKED = [label for label in BINARIES if label not in WAIVERS]


def _run(label, option):
    package, name = label[2:].split(":")
    program = os.path.join(package, name)
    assert os.access(program, os.X_OK), f"{label} is not in this test's data"
    return subprocess.run([program, option], capture_output=True, text=True, timeout=300,
                          check=False, stdin=subprocess.DEVNULL)


def test_every_waiver_names_a_py_binary():
    assert sorted(set(WAIVERS) - set(BINARIES)) == []


@pytest.mark.parametrize("label", CHECKED)
def test_help_lists_the_options_and_exits_0(label):
    proc = _run(label, "--help")
    assert proc.returncode == 0, f"{label} --help exited {proc.returncode}:\n{proc.stderr}"
    assert proc.stdout.startswith("usage:"), proc.stdout[:400]
    assert "--help" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("label", CHECKED)
def test_a_mistyped_option_exits_2_with_a_message(label):
    proc = _run(label, BAD_OPTION)
    assert proc.returncode == 2, (f"{label} {BAD_OPTION} exited {proc.returncode}:\n"
                                  f"{proc.stderr[-2000:]}")
    # argparse names a missing required argument before an unknown option:
    # any message on stderr will do.
    assert proc.stderr.strip(), f"{label} {BAD_OPTION} exited 2 without a message"
    assert "Traceback" not in proc.stdout + proc.stderr
