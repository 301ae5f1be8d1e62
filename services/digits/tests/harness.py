"""Test harness: the service and redis-server as real processes on loopback, an HTTP client.

Readiness is polled with a deadline; nothing waits by sleeping a fixed time.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from models.digits import paths

HOST = "127.0.0.1"
START_DEADLINE_S = 60.0


def free_port():
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def model_path():
    """The built model artifact, from runfiles."""
    return paths.model_path()


def images(n, seed=0):
    """`n` real 8x8 digit images (pixel levels 0..16) as (n, 64) int lists, and their labels."""
    data = np.load(paths.dataset_path(), allow_pickle=False)
    rows = np.random.default_rng(seed).choice(len(data), size=n, replace=n > len(data))
    return data["pixels"][rows].astype(int).tolist(), [str(v) for v in data["label"][rows]]


class Response:
    """Status, headers (lower-case names) and body of one HTTP response."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        """The body, parsed."""
        return json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.body[:300]!r})"


def call(port, method, path, body=None, headers=None, timeout=30):
    """One HTTP request; `body` may be bytes or a JSON-able object."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()},
                        response.read())
    finally:
        conn.close()


# `python -m services.digits` in an interpreter that cannot import numpy: the
# production image does not ship it, so neither the server nor its worker (a
# fork of it) may need it.
SERVE_WITHOUT_NUMPY = [
    sys.executable, "-c",
    "import runpy, sys; sys.modules['numpy'] = None; "
    "runpy.run_module('services.digits', run_name='__main__', alter_sys=True)"]


class Server:
    """`python -m services.digits` (without numpy) with `env` (DIGITS_*) on a free port."""

    def __init__(self, env):
        self.port = free_port()
        self.env = {"DIGITS_MODEL_PATH": model_path(), **env,
                    "DIGITS_PORT": str(self.port), "DIGITS_HOST": HOST}
        self.process = None
        self.log = tempfile.TemporaryFile()  # pylint: disable=consider-using-with

    def start(self, wait_ready=True):
        """Starts the process; by default waits until /v2/health/ready answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            SERVE_WITHOUT_NUMPY, env=env,
            stdout=self.log, stderr=subprocess.STDOUT)
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, deadline_s=START_DEADLINE_S):
        """Polls readiness until the deadline; fails with the server's output."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n"
                                     f"{self.output()}")
            try:
                if self.get("/v2/health/ready", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"server not ready after {deadline_s} s:\n{self.output()}")

    def get(self, path, **kwargs):
        """GET `path`."""
        return call(self.port, "GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        """POST `body` (bytes, or an object sent as JSON) to `path`."""
        return call(self.port, "POST", path, body=body, **kwargs)

    def metric(self, sample, **labels):
        """The value of one sample of /metrics (0.0 if absent)."""
        want = sample
        if labels:
            want += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        for line in self.get("/metrics").body.decode().splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            if _same_sample(key, want):
                return float(value)
        return 0.0

    def terminate(self):
        """Sends SIGTERM (graceful shutdown)."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def output(self):
        """Everything the server printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def _same_sample(key, want):
    if "{" not in want:
        return key == want
    name, _, labels = key.partition("{")
    want_name, _, want_labels = want.partition("{")
    return name == want_name and sorted(labels.rstrip("}").split(",")) == sorted(
        want_labels.rstrip("}").split(","))


class RedisServer:
    """Debian's redis-server, in-memory only, LRU-bounded like production."""

    def __init__(self, password=None):
        self.port = free_port()
        self.process = None
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.password = password

    @property
    def url(self):
        """The redis:// URL of this server."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    def start(self):
        """Starts redis-server (again, after `stop`) and waits until it answers PING."""
        os.makedirs(self.dir, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server not found: install Debian's redis-server "
                                 "package (tools/bootstrap should).")
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [binary, "--bind", HOST, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--maxmemory", "16mb",
             "--maxmemory-policy", "allkeys-lru", "--protected-mode", "yes"]
            + (["--requirepass", self.password] if self.password else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.process.returncode}")
            try:
                if self.command("PING") in (b"+PONG\r\n", b"-NOAUTH Authentication required.\r\n"):
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("redis-server did not answer PING")

    def command(self, *words):
        """One inline command; the raw reply."""
        with socket.create_connection((HOST, self.port), timeout=5) as sock:
            if self.password and words != ("PING",):
                sock.sendall(f"AUTH {self.password}\r\n".encode())
                sock.recv(1024)
            sock.sendall(" ".join(words).encode() + b"\r\n")
            return sock.recv(65536)

    def dbsize(self):
        """Number of keys."""
        return int(self.command("DBSIZE").strip()[1:])

    def stop(self):
        """Stops redis-server and removes its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
