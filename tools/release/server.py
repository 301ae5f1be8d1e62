"""A real registry process: Debian's docker-registry (CNCF distribution) on loopback.

Two users: the embedded default registry of the release commands (no
MODELSHIP_REGISTRY set; see `embedded()`), and the test fixtures, which start
one with htpasswd or token authentication and kill it mid-operation.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from tools.release import errors

BINARY = "docker-registry"
HTPASSWD = "htpasswd"


def free_port():
    """A TCP port free on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_user(htpasswd_file, user, password):
    """Adds a bcrypt entry (the only hash distribution accepts); the password goes on
    stdin, not argv."""
    argv = [HTPASSWD, "-B", "-i"]
    if not os.path.exists(htpasswd_file):
        argv.append("-c")
    proc = subprocess.run(argv + [htpasswd_file, user], input=password, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise errors.ReleaseError(f"htpasswd failed: {proc.stdout.strip()}")


class Registry:
    """One docker-registry process serving `root`/data on 127.0.0.1:`port`."""

    def __init__(self, root, port=None, htpasswd=None, token=None):
        self.root = root
        self.port = port or free_port()
        self.htpasswd = htpasswd
        # Token authentication: {"realm", "service", "issuer", "rootcertbundle"}.
        self.token = token
        self.process = None
        self.storage = os.path.join(root, "data")
        self.config = os.path.join(root, "config.yml")
        self.log = os.path.join(root, "registry.log")

    @property
    def address(self):
        """host:port, as MODELSHIP_REGISTRY takes it."""
        return f"127.0.0.1:{self.port}"

    def write_config(self):
        """The registry's configuration (JSON is YAML): filesystem storage, no blob
        descriptor cache (so a blob removed from disk is missing at once), loopback."""
        os.makedirs(self.storage, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": self.storage},
                        "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.address, "secret": "modelship-local-registry"},
        }
        if self.htpasswd:
            config["auth"] = {"htpasswd": {"realm": "modelship", "path": self.htpasswd}}
        elif self.token:
            config["auth"] = {"token": dict(self.token)}
        with open(self.config, "w", encoding="utf-8") as out:
            json.dump(config, out, indent=2)

    def start(self, deadline_s=30, detach=False):
        """Starts the registry (unless it runs) and waits until /v2/ answers."""
        if self.process and self.process.poll() is None:
            return self
        binary = shutil.which(BINARY)
        if not binary:
            raise errors.ReleaseError("docker-registry is not installed: run tools/bootstrap")
        self.write_config()
        with open(self.log, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                [binary, "serve", self.config], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=detach)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise errors.ReleaseError(f"docker-registry exited at start "
                                          f"(status {self.process.returncode}); see {self.log}")
            if answers(self.address):
                return self
            time.sleep(0.1)
        self.stop()
        raise errors.ReleaseError(f"docker-registry did not answer on {self.address} within "
                                  f"{deadline_s}s; see {self.log}")

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self):
        """Stops the process (storage is kept, so a restart serves the same content)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def answers(address, timeout_s=2):
    """True when a registry answers /v2/ at host:port (401 counts: it is up)."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout_s):
            return True
    except urllib.error.HTTPError as err:
        return err.code == 401
    except (urllib.error.URLError, OSError):
        return False


# --- the embedded default ---------------------------------------------------------

def embedded_root():
    """~/.cache/modelship/registry (or under $XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "modelship", "registry")


def _state_path(root):
    return os.path.join(root, "state.json")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def embedded(root=None):
    """host:port of the embedded registry, started (and left running) if it is not up."""
    root = root or embedded_root()
    os.makedirs(root, exist_ok=True)
    try:
        with open(_state_path(root), encoding="utf-8") as text:
            state = json.load(text)
        if _alive(state["pid"]) and answers(state["address"]):
            return state["address"]
    except (OSError, ValueError, KeyError):
        pass
    registry = Registry(root).start(detach=True)
    with open(_state_path(root), "w", encoding="utf-8") as out:
        json.dump({"address": registry.address, "pid": registry.process.pid}, out)
    # It outlives this process on purpose; keep the handle so it is not collected
    # (and warned about) while we still run.
    _DETACHED.append(registry.process)
    return registry.address


_DETACHED = []


def stop_embedded(root=None):
    """Stops the embedded registry; returns its address, or None if it was not running."""
    root = root or embedded_root()
    try:
        with open(_state_path(root), encoding="utf-8") as text:
            state = json.load(text)
    except (OSError, ValueError):
        return None
    os.unlink(_state_path(root))
    if not _alive(state.get("pid", 0)):
        return None
    os.kill(state["pid"], signal.SIGTERM)
    for process in _DETACHED:  # started by this very process: reap it
        if process.pid == state["pid"]:
            process.wait(10)
    return state.get("address")
