"""`bazel run //:image` shows no linux-sandbox debug output (issue 13, item 10).

Debian's Bazel turns --sandbox_debug on for every build (/etc/bazel/bazelrc),
so each sandboxed action printed ~40 lines of linux-sandbox debug output in
the middle of the image build's report. The workspace's .bazelrc turns it off
again. This test runs a real Bazel (its own output root, so no deadlock with
the Bazel running it) on a one-genrule workspace that uses this repository's
.bazelrc, with the machine's own system bazelrc, and reads what it prints.
"""

import os
import re
import shutil
import subprocess

import pytest

SANDBOX_DEBUG = re.compile(r"src/main/tools/linux-sandbox[\w.-]*\.cc:\d+")
BUILD = """\
genrule(
    name = "{name}",
    outs = ["{name}.txt"],
    cmd = "echo 'a line the action prints' >&2; echo ok > $@",
)
"""


@pytest.fixture(name="bazel", scope="module")
def fixture_bazel(tmp_path_factory):
    """Runs a private Bazel server in a tiny workspace; (argv, workspace) -> output."""
    if not shutil.which("bazel"):
        pytest.fail("bazel is not installed: run tools/bootstrap")
    root = tmp_path_factory.mktemp("bazel")
    workspace = root / "ws"
    workspace.mkdir()
    (workspace / "WORKSPACE").write_text("")
    (workspace / "BUILD").write_text(BUILD.format(name="with_debug")
                                     + BUILD.format(name="ours"))
    shutil.copy(os.path.realpath(".bazelrc"), workspace / ".bazelrc")
    home = root / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "USER": "root"}
    startup = ["bazel", f"--output_user_root={root / 'out'}", "--max_idle_secs=30"]

    def run(*args):
        proc = subprocess.run(startup + list(args), cwd=workspace, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:]
        return proc.stdout

    yield run
    subprocess.run(startup + ["shutdown"], cwd=workspace, env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sandbox_debug_lines_are_recognised_when_asked_for(bazel):
    # The detector works, and sandboxed actions run here: asked for, the noise is there.
    out = bazel("build", "--sandbox_debug", "//:with_debug")
    assert SANDBOX_DEBUG.search(out), out[-3000:]


def test_the_workspace_bazelrc_keeps_sandbox_debug_output_away(bazel):
    out = bazel("build", "//:ours")
    assert "a line the action prints" in out  # an action's own output still shows
    noise = [line for line in out.splitlines() if SANDBOX_DEBUG.search(line)]
    assert not noise, f"{len(noise)} linux-sandbox debug lines, e.g. {noise[:3]}"
