"""Test harness: the service and redis-server as real processes on loopback, an HTTP client.

Readiness is polled with a deadline; nothing waits by sleeping a fixed time.
"""

import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from models.digits import paths
from serving.config import Config
from serving import testing
from serving.tests import redis_harness
from services.digits.handler import DigitsHandler

HOST = "127.0.0.1"
# The redis-server and TLS helpers are the runtime's (re-exported for these tests).
RedisServer, TlsFiles, free_port = (redis_harness.RedisServer, redis_harness.TlsFiles,
                                    redis_harness.free_port)
START_DEADLINE_S = 60.0


def model_path():
    """The built model artifact, from runfiles."""
    return paths.model_path()


def config(environ):
    """The runtime's configuration of the digits handler from `environ` (MODELSHIP_*)."""
    return Config.from_environ(environ, handler=DigitsHandler)


def images(n, seed=0):
    """`n` real 8x8 digit images (pixel levels 0..16) as (n, 64) int lists, and their labels."""
    data = np.load(paths.dataset_path(), allow_pickle=False)
    rows = np.random.default_rng(seed).choice(len(data), size=n, replace=n > len(data))
    return data["pixels"][rows].astype(int).tolist(), [str(v) for v in data["label"][rows]]


# Status, headers and body of one HTTP response: the runtime's own test type.
Response = testing.Response


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


# `python -m serving` in an interpreter that cannot import numpy: the
# production image does not ship it, so neither the server nor its worker (a
# fork of it) may need it.
SERVE_WITHOUT_NUMPY = [
    sys.executable, "-c",
    "import runpy, sys; sys.modules['numpy'] = None; "
    "runpy.run_module('serving', run_name='__main__', alter_sys=True)"]
HANDLER = "services.digits.handler:DigitsHandler"


class Server:
    """`python -m serving` with the digits handler (without numpy) with `env` (MODELSHIP_*)
    on a free port."""

    def __init__(self, env):
        self.port = free_port()
        self.env = {"MODELSHIP_HANDLER": HANDLER, "MODELSHIP_MODEL_PATH": model_path(), **env,
                    "MODELSHIP_PORT": str(self.port), "MODELSHIP_HOST": HOST}
        self.process = None
        self.log = tempfile.TemporaryFile()  # pylint: disable=consider-using-with

    def start(self, wait_ready=True):
        """Starts the process; by default waits until /v2/health/ready answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHIP_")}
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

    def worker_pid(self):
        """The pid of Granian's worker process (the one child of the server process)."""
        pid = self.process.pid
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            (worker,) = children.read().split()
        return int(worker)

    def worker_rss_mib(self):
        """Resident memory of the worker process, in MiB (VmRSS of /proc/<pid>/status)."""
        return rss_mib(self.worker_pid())

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


class SlowClients:
    """`n` raw connections that each send a POST head announcing `declared` body bytes,
    then only `sent` of them; nothing more unless `trickle` sends another byte each.

    `pump()` sends what the sockets take and collects what the server answers;
    a connection's outcome is its raw response, or the error that ended it.
    """

    def __init__(self, port, n, declared, sent, path="/v1/predict"):
        self.head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n"
                     "Content-Type: application/json\r\n"
                     f"Content-Length: {declared}\r\n\r\n").encode()
        self.sent = sent
        self.selector = selectors.DefaultSelector()
        self.conns = []
        for _ in range(n):
            sock = socket.create_connection((HOST, port), timeout=10)
            sock.setblocking(False)
            conn = {"sock": sock, "out": bytearray(self.head + b"1" * sent),
                    "in": bytearray(), "done": None, "opened": time.monotonic()}
            self.conns.append(conn)
            self.selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def trickle(self):
        """Queues one more body byte on every open connection."""
        for conn in self.conns:
            if conn["done"] is None:
                conn["out"] += b"1"

    def pump(self, seconds):
        """Sends and receives for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.open_count():
            for key, events in self.selector.select(timeout=0.05):
                conn = key.data
                try:
                    if events & selectors.EVENT_WRITE and conn["out"]:
                        del conn["out"][:conn["sock"].send(conn["out"])]
                    if events & selectors.EVENT_READ:
                        data = conn["sock"].recv(65536)
                        if data:
                            conn["in"] += data
                        else:
                            self._finish(conn, bytes(conn["in"]))
                except BlockingIOError:
                    pass
                except OSError as err:
                    self._finish(conn, bytes(conn["in"]) or err)

    def _finish(self, conn, outcome):
        conn["done"] = (outcome, time.monotonic() - conn["opened"])
        self.selector.unregister(conn["sock"])
        conn["sock"].close()

    def open_count(self):
        """Connections the server has not ended yet."""
        return sum(conn["done"] is None for conn in self.conns)

    def outcomes(self):
        """(status or error name, body, seconds from opening) of each ended connection."""
        out = []
        for conn in self.conns:
            if conn["done"] is None:
                continue
            outcome, seconds = conn["done"]
            if isinstance(outcome, bytes) and outcome.startswith(b"HTTP/1.1 "):
                head, _, body = outcome.partition(b"\r\n\r\n")
                out.append((int(head[9:12]), head.decode("latin-1").lower(), body, seconds))
            else:
                name = type(outcome).__name__ if isinstance(outcome, OSError) else "closed"
                out.append((name, "", b"", seconds))
        return out

    def close(self):
        """Closes every connection still open."""
        for conn in self.conns:
            if conn["done"] is None:
                self._finish(conn, None)
        self.selector.close()


def rss_mib(pid):
    """VmRSS of process `pid`, in MiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _same_sample(key, want):
    if "{" not in want:
        return key == want
    name, _, labels = key.partition("{")
    want_name, _, want_labels = want.partition("{")
    return name == want_name and sorted(labels.rstrip("}").split(",")) == sorted(
        want_labels.rstrip("}").split(","))
