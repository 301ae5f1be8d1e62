"""What a person sees while a long command runs: progress, heartbeats, a log file.

    reporter = progress.Reporter("image", log_dir="dist/logs")
    reporter.run(argv, step="fetching .deb files", log_name="debs")
    reporter.run(buildah_argv, step="stage lint", log_name="lint",
                 parse=progress.BuildahSteps())

Every line the command prints goes to its log file (the whole output, kept
after the build); only progress reaches the terminal, on stderr:
  - with a parser, one line per step the parser recognises (for buildah: one
    per Dockerfile step, `image: [lint] step 11/14: RUN ... (3m05s)`, and the
    `check:` / `finalize:` lines our own tools print inside the steps);
  - a heartbeat line when nothing was shown for `heartbeat_s` seconds, so a
    step that runs for minutes (the test suite, pylint) is seen to be alive;
  - on failure, StepFailed: the stage, the step, the exit status, the last
    lines, and the log file that holds the full output, as a path relative to
    the user's directory.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

HEARTBEAT_S = 30.0
TAIL_LINES = 25
# `[2/3] STEP 4/9: COPY wheels/ /opt/modelship/wheels/` (the stage index only in
# multi-stage builds), as buildah 1.28 prints a step it starts.
_STEP = re.compile(r"^(?:\[(\d+)/(\d+)\] )?STEP (\d+)/(\d+): (.*)$")
_STAGE_NAME = re.compile(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", re.IGNORECASE)
# Progress lines of our own tools that run inside the steps (tools/image/check.py,
# tools/image/finalize.py): shown as they come.
_OWN_PROGRESS = re.compile(r"^(check|finalize): ")


class StepFailed(Exception):
    """A command failed; the message names the step and the log with the full output."""


def user_path(path):
    """`path` as the user should type it: relative to the folder they ran the command
    in (`bazel run` starts us elsewhere and says where in BUILD_WORKING_DIRECTORY)."""
    base = os.environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd()
    relative = os.path.relpath(os.path.abspath(path), base)
    return os.path.abspath(path) if relative.startswith(os.pardir + os.sep + os.pardir) \
        else relative


def duration(seconds):
    """'42s', '3m05s', '1h02m'."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def short_instruction(text, width=72):
    """A Dockerfile instruction shortened for one line: exec-form arguments joined,
    interpreter paths dropped, cut at `width`."""
    keyword, _, rest = text.partition(" ")
    if rest.startswith("["):
        try:
            args = json.loads(rest)
        except ValueError:
            args = None
        if isinstance(args, list) and all(isinstance(a, str) for a in args):
            if args and os.path.basename(args[0]).startswith("python"):
                args = args[1:]
            rest = " ".join(args)
    line = " ".join(f"{keyword} {rest}".split())
    return line if len(line) <= width else line[:width - 3] + "..."


class BuildahSteps:
    """Turns `buildah build` output into progress: which stage and step runs now."""

    def __init__(self):
        self.stage = None
        self.step = None  # "3/9: RUN ..."
        # Stage names by buildah's stage index (or, without one, by step count):
        # buildah builds a stage that a COPY --from needs in the middle of
        # another, then goes on with the first one's steps.
        self._names = {}

    def describe(self):
        """Where the build is, for heartbeats and failures."""
        if self.step is None:
            return "before the first step"
        return f"stage {self.stage or '?'}, step {self.step}"

    def feed(self, line):
        """Returns the progress line for an output line, or None to keep it quiet."""
        match = _STEP.match(line)
        if match:
            number, count, instruction = match.group(3), match.group(4), match.group(5)
            key = match.group(1) or f"/{count}"
            if number == "1":
                named = _STAGE_NAME.match(instruction)
                self._names[key] = named.group(1) if named else f"stage {match.group(1) or 1}"
            self.stage = self._names.get(key, self.stage)
            self.step = f"{number}/{count}: {short_instruction(instruction)}"
            return f"[{self.stage}] step {self.step}"
        if _OWN_PROGRESS.match(line):
            return f"[{self.stage}]   {line.strip()[:90]}"
        return None


class Reporter:
    """Prints progress for one tool (`<prefix>: ...` on stderr) and runs its commands."""

    def __init__(self, prefix, log_dir=None, stream=None, heartbeat_s=None):
        self.prefix = prefix
        self.log_dir = log_dir
        self.stream = stream  # None: sys.stderr as it is when a line is printed
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self.started = time.monotonic()
        self.wall_started = time.time()  # when (UTC), for reports
        self._lock = threading.Lock()
        self._last_said = time.monotonic()

    def say(self, message):
        """One progress line."""
        with self._lock:
            print(f"{self.prefix}: {message}", file=self.stream or sys.stderr, flush=True)
            self._last_said = time.monotonic()

    def log_path(self, log_name):
        """Where the full output of a step goes."""
        folder = self.log_dir or os.path.join("dist", "logs")
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, log_name + ".log")

    def run(self, argv, step, log_name, parse=None, **popen):
        """Runs argv, its whole output into the step's log file, progress on the stream;
        returns the output. Raises StepFailed naming the step and the log."""
        path = self.log_path(log_name)
        started = time.monotonic()
        self.say(f"{step} (log: {user_path(path)})")
        lines = []
        done = threading.Event()

        def where():
            inner = parse.describe() if parse is not None else None
            return f"{step}, {inner}" if inner else step

        def heartbeat():
            while not done.wait(min(1.0, self.heartbeat_s / 4)):
                if time.monotonic() - self._last_said >= self.heartbeat_s:
                    self.say(f"... still running: {where()} "
                             f"({duration(time.monotonic() - started)})")

        with open(path, "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            beat = threading.Thread(target=heartbeat, daemon=True)
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace", **popen) as proc:
                beat.start()
                try:
                    for line in proc.stdout:
                        log.write(line)
                        log.flush()
                        lines.append(line.rstrip("\n"))
                        shown = parse.feed(line.rstrip("\n")) if parse is not None else None
                        if shown:
                            self.say(f"{shown} ({duration(time.monotonic() - started)})")
                    status = proc.wait()
                finally:
                    done.set()
                    beat.join()
                    if proc.poll() is None:
                        proc.kill()
        elapsed = duration(time.monotonic() - started)
        if status != 0:
            tail = "\n".join("  " + line for line in lines[-TAIL_LINES:])
            raise StepFailed(f"{where()} failed (exit {status}) after {elapsed}; the full "
                             f"output is in {user_path(path)}; its last lines:\n{tail}")
        self.say(f"{step}: done in {elapsed}")
        return "\n".join(lines) + ("\n" if lines else "")
