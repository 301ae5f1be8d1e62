"""Test helpers of the runtime: a real redis-server (plain or TLS) on a free loopback port.

Readiness is polled with a deadline; nothing waits by sleeping a fixed time.
"""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
START_DEADLINE_S = 60.0


def free_port():
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class TlsFiles:
    """A CA, a server certificate it signed (for the name localhost only), a client
    certificate it signed, and an unrelated CA: PEM files made with openssl in `folder`."""

    def __init__(self, folder):
        self.folder = folder
        self.ca_cert, self.ca_key = self._ca("ca", "modelship test CA")
        self.other_ca_cert, _ = self._ca("other-ca", "some other CA")
        self.server_cert, self.server_key = self._signed(
            "server", "localhost", "subjectAltName=DNS:localhost")
        self.client_cert, self.client_key = self._signed("client", "modelship", None)

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
