"""What a person sees while the image builds (tools/image/progress.py, build.py).

A fake `buildah` on PATH replays a recorded lint-stage build that fails, so
the build's own output layer runs as in a real build, in a second: one line per
Dockerfile step, our tools' `check:` lines, heartbeats while a step is silent,
nothing else; the failure names the stage, the step and the log file, which
holds the whole output.
"""

import io
import os
import re
import stat
import sys

import pytest

from tools.image import build, progress

RECORDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata",
                        "buildah-lint-fails.txt")
# What Bazel's linux-sandbox prints in debug mode (the noise of issue 13, item 10).
SANDBOX_DEBUG = re.compile(r"src/main/tools/(linux-sandbox|process-tools)[\w.-]*\.cc:\d+")

FAKE_BUILDAH = """#!{python}
import sys, time
lines = open({recorded!r}, encoding="utf-8").read().splitlines()
for line in lines:
    if line.startswith("[3/3] STEP 2/2"):
        print(line, flush=True)
        # the long silent step: pylint runs
        time.sleep({pause})
        continue
    if line.startswith("Error:"):
        print(line, file=sys.stderr, flush=True)
        continue
    print(line, flush=True)
    time.sleep(0.01)
sys.exit(1)
"""


@pytest.fixture(name="fake_buildah")
def fixture_fake_buildah(tmp_path, monkeypatch):
    """A `buildah` first on PATH that replays the recorded failing lint build."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "buildah"
    script.write_text(FAKE_BUILDAH.format(python=sys.executable, recorded=RECORDED, pause=1.2))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUILD_WORKING_DIRECTORY", raising=False)
    return folder


@pytest.fixture(name="shown")
def fixture_shown(monkeypatch, tmp_path):
    """The build's progress stream (what the terminal would show), fast heartbeats."""
    stream = io.StringIO()
    monkeypatch.setattr(build, "REPORTER", progress.Reporter(
        "image", log_dir=str(tmp_path / "dist" / "logs"), stream=stream, heartbeat_s=0.4))
    return stream


def test_failing_stage_names_the_stage_the_step_and_the_log_with_the_full_output(
        fake_buildah, shown, tmp_path):
    del fake_buildah, shown
    with pytest.raises(build.BuildError) as failed:
        build.buildah_build(str(tmp_path), "lint", 0, {"a": "b"}, False, "localhost/x:lint")
    message = str(failed.value)
    assert "stage lint" in message
    assert 'step 2/2: RUN tools/image/check.py lint' in message
    assert "exit 1" in message
    log = os.path.join("dist", "logs", "stage-lint.log")
    assert f"the full output is in {log}" in message
    # the tail of the output, pylint's complaint among it
    assert "C0301: Line too long" in message
    with open(tmp_path / log, encoding="utf-8") as text:
        kept = text.read()
    with open(RECORDED, encoding="utf-8") as text:
        for line in text.read().splitlines():
            assert line in kept, line


def test_progress_shows_each_step_and_our_checks_with_elapsed_times_and_nothing_else(
        fake_buildah, shown, tmp_path):
    del fake_buildah
    with pytest.raises(build.BuildError):
        build.buildah_build(str(tmp_path), "lint", 0, {}, False, "localhost/x:lint")
    lines = shown.getvalue().splitlines()
    assert all(line.startswith("image: ") for line in lines), lines
    steps = [line for line in lines if " step " in line and "still running" not in line]
    with open(RECORDED, encoding="utf-8") as text:
        recorded_steps = [line for line in text
                          if re.match(r"(\[\d+/\d+\] )?STEP \d+/\d+: ", line)]
    assert len(steps) == len(recorded_steps) == 17
    assert re.search(r"^image: \[base\] step 1/3: FROM scratch AS base \(\d+s\)$",
                     steps[0], re.M), steps[0]
    assert re.search(r"^image: \[dev\] step 3/12: RUN -m compileall ", steps[5]), steps[5]
    assert steps[-1].startswith("image: [lint] step 2/2: RUN tools/image/check.py lint (")
    assert "image: [lint]   check: pylint on 83 files: FAILED (exit 16)" in "\n".join(lines)
    assert "image: [dev]   finalize: built inference/kernels.so" in "\n".join(lines)
    # pylint ran silently for a while: heartbeats said where the build was
    beats = [line for line in lines if "still running" in line]
    assert beats and "stage lint, step 2/2: RUN tools/image/check.py lint" in beats[0], lines
    # raw tool output stays in the log
    assert not any("C0301" in line or line.startswith("image: -->") for line in lines)


def test_no_line_that_is_not_progress_reaches_the_terminal(tmp_path):
    """Noise (here: sandbox debug lines, as Debian's Bazel prints them) goes to the log."""
    noise = ("1796523871.12: src/main/tools/linux-sandbox-pid1.cc:291: remount ro: /proc\n"
             "1796523871.13: src/main/tools/linux-sandbox.cc:152: calling pipe(2)...\n")
    script = tmp_path / "noisy.py"
    script.write_text(f"import sys\nsys.stderr.write({noise!r})\n"
                      "print('STEP 1/1: RUN [\"/usr/bin/python3\", \"x.py\"]')\n")
    stream = io.StringIO()
    reporter = progress.Reporter("image", log_dir=str(tmp_path), stream=stream,
                                 heartbeat_s=30)
    output = reporter.run([sys.executable, str(script)], "a noisy step", "noisy",
                          parse=progress.BuildahSteps())
    assert SANDBOX_DEBUG.search(output)  # the noise was there ...
    assert SANDBOX_DEBUG.search((tmp_path / "noisy.log").read_text())  # ... and is kept
    shown = stream.getvalue()
    assert not SANDBOX_DEBUG.search(shown), shown  # ... but not shown
    assert "image: [stage 1] step 1/1: RUN x.py" in shown
    assert "image: a noisy step: done in " in shown


def test_a_long_silent_command_gets_heartbeats_with_the_elapsed_time(tmp_path):
    stream = io.StringIO()
    reporter = progress.Reporter("image", log_dir=str(tmp_path), stream=stream,
                                 heartbeat_s=0.3)
    reporter.run([sys.executable, "-c", "import time; time.sleep(1.2)"],
                 "downloading wheels", "wheels")
    beats = [line for line in stream.getvalue().splitlines() if "still running" in line]
    assert len(beats) >= 2, stream.getvalue()
    assert all(re.fullmatch(r"image: \.\.\. still running: downloading wheels \(\d+s\)", b)
               for b in beats), beats


def test_log_paths_are_shown_relative_to_where_the_user_ran_the_command(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("BUILD_WORKING_DIRECTORY", str(tmp_path / "repo"))
    assert progress.user_path(str(tmp_path / "repo" / "dist" / "logs" / "x.log")) == \
        os.path.join("dist", "logs", "x.log")
    monkeypatch.setenv("BUILD_WORKING_DIRECTORY", str(tmp_path / "repo" / "docs"))
    assert progress.user_path(str(tmp_path / "repo" / "dist" / "x.log")) == \
        os.path.join("..", "dist", "x.log")


def test_durations_read_as_a_person_would_say_them():
    assert progress.duration(7.9) == "7s"
    assert progress.duration(185) == "3m05s"
    assert progress.duration(3720) == "1h02m"


def test_a_stage_built_in_the_middle_of_another_does_not_take_over_its_steps():
    steps = progress.BuildahSteps()
    lines = ["[2/3] STEP 1/4: FROM abc AS production",
             "[2/3] STEP 2/4: COPY --from=dev /a /a",
             "[1/3] STEP 1/2: FROM scratch AS dev",
             "[1/3] STEP 2/2: RUN make",
             "[2/3] STEP 3/4: COPY --from=dev /b /b",
             "STEP 4/4: LABEL x=y"]
    shown = [steps.feed(line) for line in lines]
    assert [line.split("]")[0] for line in shown] == [
        "[production", "[production", "[dev", "[dev", "[production", "[production"]
