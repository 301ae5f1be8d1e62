"""Test harness: the service and redis-server as real processes on loopback, an HTTP client.

Readiness is polled with a deadline; nothing waits by sleeping a fixed time.
"""

import http.client
import json
import os
import selectors
import shutil
import signal
import socket
import ssl
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


class TlsFiles:
    """A CA, a server certificate it signed (for the name localhost only), a client
    certificate it signed, and an unrelated CA: PEM files made with openssl in `folder`."""

    def __init__(self, folder):
        self.folder = folder
        self.ca_cert, self.ca_key = self._ca("ca", "modelship test CA")
        self.other_ca_cert, _ = self._ca("other-ca", "some other CA")
        self.server_cert, self.server_key = self._signed(
            "server", "localhost", "subjectAltName=DNS:localhost")
        self.client_cert, self.client_key = self._signed("client", "digits", None)

    def _openssl(self, *args):
        binary = shutil.which("openssl")
        if binary is None:
            raise AssertionError("openssl not found: install Debian's openssl package "
                                 "(tools/bootstrap should).")
        subprocess.run([binary, *args], check=True, capture_output=True, cwd=self.folder)

    def _ca(self, name, subject):
        cert, key = (os.path.join(self.folder, f"{name}.{kind}") for kind in ("crt", "key"))
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj",
                      f"/CN={subject}", "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return cert, key

    def _signed(self, name, common_name, extension):
        cert, key, csr, ext = (os.path.join(self.folder, f"{name}.{kind}")
                               for kind in ("crt", "key", "csr", "ext"))
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={common_name}")
        with open(ext, "w", encoding="ascii") as out:
            out.write((extension or "") + "\n")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key


class RedisServer:
    """Debian's redis-server, in-memory only, LRU-bounded like production.

    With `tls` (a TlsFiles), it speaks only TLS, with the server certificate of
    `tls`, and asks clients for a certificate signed by its CA when
    `client_certs` is true.
    """

    def __init__(self, password=None, tls=None, client_certs=False):
        self.port = free_port()
        self.process = None
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.password = password
        self.tls = tls
        self.client_certs = client_certs

    @property
    def url(self):
        """The redis:// (rediss:// with TLS) URL of this server."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}localhost:{self.port}/0"
        return f"redis://{auth}{HOST}:{self.port}/0"

    def _listen_args(self):
        if not self.tls:
            return ["--port", str(self.port)]
        return ["--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", self.tls.server_cert, "--tls-key-file", self.tls.server_key,
                "--tls-ca-cert-file", self.tls.ca_cert,
                "--tls-auth-clients", "yes" if self.client_certs else "no"]

    def _connect(self):
        sock = socket.create_connection((HOST, self.port), timeout=5)
        if not self.tls:
            return sock
        context = ssl.create_default_context(cafile=self.tls.ca_cert)
        context.load_cert_chain(self.tls.client_cert, self.tls.client_key)
        return context.wrap_socket(sock, server_hostname="localhost")

    def start(self):
        """Starts redis-server (again, after `stop`) and waits until it answers PING."""
        os.makedirs(self.dir, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server not found: install Debian's redis-server "
                                 "package (tools/bootstrap should).")
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [binary, "--bind", HOST, *self._listen_args(), "--save", "",
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
        with self._connect() as sock:
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
