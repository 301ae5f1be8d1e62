"""A real nginx serving a lookaside folder over HTTP on a free loopback port, as a
static web server (GitLab Pages, object storage) serves the signatures in production."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

NGINX = "/usr/sbin/nginx"

_CONF = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        autoindex off;
    }}
}}
"""


def free_port():
    """A TCP port free on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lookaside:
    """nginx serving `root` at `url`; start() and stop() it (stop: connections refused)."""

    def __init__(self, directory, root):
        self.directory = directory
        self.root = root
        self.port = free_port()
        self.process = None
        os.makedirs(os.path.join(directory, "temp"), exist_ok=True)
        os.makedirs(root, exist_ok=True)
        self.conf = os.path.join(directory, "nginx.conf")
        # A root master's workers would drop to nobody, who cannot read a test's
        # private temporary folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        with open(self.conf, "w", encoding="utf-8") as out:
            out.write(_CONF.format(user=user, dir=directory, port=self.port, root=root))

    @property
    def url(self):
        """The lookaside URL clients read (registries.d `lookaside`)."""
        return f"http://127.0.0.1:{self.port}/"

    def start(self, deadline_s=10):
        """Starts nginx and waits until it answers."""
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [NGINX, "-p", self.directory, "-c", self.conf], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            assert self.process.poll() is None, f"nginx exited; see {self.directory}/error.log"
            try:
                with urllib.request.urlopen(self.url, timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise AssertionError(f"nginx did not answer on {self.url}")

    def stop(self):
        """Stops nginx (fast shutdown) and waits for it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def requests(self):
        """The request lines nginx logged (proof that signatures were read through it)."""
        try:
            with open(os.path.join(self.directory, "access.log"), encoding="utf-8") as text:
                return text.read()
        except FileNotFoundError:
            return ""
