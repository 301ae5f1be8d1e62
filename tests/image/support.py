"""What the image tests share: the source tree, a build, a private dockerd.

These tests drive real tools as root (buildah, dockerd), so their targets are
tagged `local` (no sandbox) and find the source tree through the WORKSPACE
file in their runfiles, which links back to it.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILDER = "tools/image/build.py"
# Bazel gives tests PATH=/bin:/usr/bin:/usr/local/bin; dockerd lives in sbin.
DAEMON_PATH = os.pathsep.join([os.environ.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin"])
IMAGE = "modelship-digits"


def workspace():
    """The source tree this test was built from."""
    return os.path.dirname(os.path.realpath("WORKSPACE"))


def build_production(out, extra=()):
    """Builds the production image as `bazel run //:image` does; returns the report."""
    env = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=workspace())
    proc = subprocess.run([sys.executable, BUILDER, "--target", "production", "--out", out]
                          + list(extra), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    assert proc.returncode == 0, f"image build failed:\n{proc.stdout[-4000:]}"
    with open(os.path.join(out, IMAGE + ".json"), encoding="utf-8") as report:
        return json.load(report)


def free_port():
    """A TCP port free on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(port, method, path, body=None, timeout=10):
    """(status, parsed JSON body or text) of one request to 127.0.0.1:port."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_until(check, deadline_s, what):
    """Polls `check()` until it returns truthy or the deadline passes."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            result = check()
            if result:
                return result
        except OSError as err:  # not up yet
            last = err
        time.sleep(0.2)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what} ({last})")


class Docker:
    """A dockerd of the test's own (socket, data and exec roots in a temp folder)."""

    def __init__(self, root):
        self.root = root
        self.socket = os.path.join(root, "docker.sock")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.socket}", PATH=DAEMON_PATH)
        self.process = None
        self.log = os.path.join(root, "dockerd.log")

    def start(self):
        """Starts dockerd without bridge or iptables (containers use the host network)."""
        with open(self.log, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                [shutil.which("dockerd", path=DAEMON_PATH), "--host", f"unix://{self.socket}",
                 "--data-root", os.path.join(self.root, "data"),
                 "--exec-root", os.path.join(self.root, "exec"),
                 "--pidfile", os.path.join(self.root, "docker.pid"),
                 "--bridge", "none", "--iptables=false", "--ip-masq=false"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(lambda: self.docker("info", check=False).returncode == 0, 60, "dockerd")

    def docker(self, *args, check=True):
        """Runs the Debian docker client against this daemon."""
        proc = subprocess.run(["/usr/bin/docker"] + list(args), env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{proc.stdout}")
        return proc

    def stop(self):
        """Stops every container, then the daemon."""
        if self.process is None:
            return
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def dockerd():
    """A running private dockerd for the duration of the block."""
    if not shutil.which("dockerd", path=DAEMON_PATH):
        raise AssertionError("dockerd is not installed: run tools/bootstrap")
    root = tempfile.mkdtemp(prefix="modelship-dockerd-", dir="/tmp")
    daemon = Docker(root)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["umount", "-R", os.path.join(root, "data")], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
