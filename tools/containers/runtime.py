"""A real container runtime for tools and tests: a private dockerd, HTTP probes.

Release validation, the local deploy target and the image tests all need to
run the production image for real. They share this one seam: a dockerd of
their own (socket, data and exec roots in a folder they own, no bridge, no
iptables, containers on the host network), so several can run on one machine
without touching the system's daemon or each other.
"""

import contextlib
import functools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

# Bazel gives actions PATH=/bin:/usr/bin:/usr/local/bin; dockerd lives in sbin.
DAEMON_PATH = os.pathsep.join([os.environ.get("PATH", "/usr/bin:/bin"), "/usr/sbin", "/sbin"])
# Debian's docker.io client (the machine may carry another one in /usr/local).
DOCKER_CLIENT = "/usr/bin/docker"


class ContainerError(Exception):
    """The container runtime could not do what was asked (message says what)."""


UNSHARE = ["unshare", "--mount", "--propagation", "private", "--"]


def private_mounts(argv):
    """`argv` run in a mount namespace of its own, where the machine can give one.

    buildah mounts and unmounts an overlay for every step it runs. In the
    machine's own namespace those mounts show in every process started meanwhile:
    Bazel's linux-sandbox copies the mount table of each action it starts and
    remounts it read-only, so a mount coming and going under it can fail an
    unrelated action, and a build killed half-way leaves its mounts behind. In
    a private namespace they are the build's alone and go when it exits."""
    return UNSHARE + list(argv) if _can_unshare() else list(argv)


@functools.lru_cache(maxsize=None)
def _can_unshare():
    """Whether this process may make mount namespaces (root outside a sandbox)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(UNSHARE + ["true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
    return probe.returncode == 0


def free_port():
    """A TCP port free on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(port, method, path, body=None, timeout=10, host="127.0.0.1"):
    """(status, parsed JSON body or text) of one request to host:port."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{host}:{port}{path}", data=data,
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
    """A dockerd of our own (socket, data and exec roots under `root`)."""

    def __init__(self, root):
        self.root = root
        self.socket = os.path.join(root, "docker.sock")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.socket}", PATH=DAEMON_PATH)
        self.process = None
        self.log = os.path.join(root, "dockerd.log")

    def start(self, deadline_s=60):
        """Starts dockerd without bridge or iptables (containers use the host network)."""
        daemon = shutil.which("dockerd", path=DAEMON_PATH)
        if not daemon:
            raise ContainerError("dockerd is not installed: run tools/bootstrap")
        with open(self.log, "w", encoding="utf-8") as log:
            # In a mount namespace of its own, as buildah (private_mounts says why):
            # each container's overlay, shm and network namespace mounts are the
            # daemon's alone and go with it.
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                private_mounts([daemon, "--host", f"unix://{self.socket}",
                                "--data-root", os.path.join(self.root, "data"),
                                "--exec-root", os.path.join(self.root, "exec"),
                                "--pidfile", os.path.join(self.root, "docker.pid"),
                                "--bridge", "none", "--iptables=false", "--ip-masq=false"]),
                stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(lambda: self.docker("info", check=False).returncode == 0, deadline_s,
                   "dockerd")

    def docker(self, *args, check=True):
        """Runs the Debian docker client against this daemon."""
        proc = subprocess.run([DOCKER_CLIENT] + list(args), env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
        if check and proc.returncode != 0:
            raise ContainerError(f"docker {' '.join(args)} failed:\n{proc.stdout}")
        return proc

    def load_oci_archive(self, archive, reference, scratch):
        """Loads an OCI archive (as `bazel run //:image` writes) as `reference`."""
        loadable = os.path.join(scratch, "image.docker.tar")
        subprocess.run(["skopeo", "copy", "--quiet", f"oci-archive:{archive}",
                        f"docker-archive:{loadable}:{reference}"], check=True)
        try:
            self.docker("load", "--quiet", "--input", loadable)
        finally:
            os.unlink(loadable)

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
        self.process = None


@contextlib.contextmanager
def dockerd(prefix="modelship-dockerd-"):
    """A running private dockerd for the duration of the block."""
    root = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    daemon = Docker(root)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["umount", "-R", os.path.join(root, "data")], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
