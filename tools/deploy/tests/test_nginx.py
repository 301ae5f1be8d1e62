"""The private nginx: split by weight, reload without dropping, retry on the other track.

Real nginx (Debian) in front of two small HTTP servers standing in for the
tracks, so the routing itself is tested in seconds; the end-to-end test with
real service containers is tests/deploy/test_local_canary.py.
"""

import http.client
import http.server
import json
import threading
import time

import pytest

from tools.containers import runtime
from tools.deploy import loadgen
from tools.deploy import nginx
from tools.deploy.tests import contract

INFER = "/v2/models/iris/infer"


class Backend(http.server.ThreadingHTTPServer):
    """Answers as `name`; `fail` makes it answer 500."""

    daemon_threads = True

    def __init__(self, name):
        self.name = name
        self.fail = False
        self.hits = 0
        self.paths = []
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        """The port it listens on."""
        return self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    """Keep-alive answers naming the backend."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.server.hits += 1
        self.server.paths.append(self.path)
        status = 500 if self.server.fail else 200
        body = json.dumps({"track": self.server.name}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):  # pylint: disable=arguments-differ
        del args


@pytest.fixture(name="front")
def fixture_front(tmp_path):
    """(nginx, port, stable backend, canary backend); nginx stopped after."""
    stable, canary = Backend("stable"), Backend("canary")
    proxy = nginx.Nginx(str(tmp_path / "nginx"))
    port = runtime.free_port()
    proxy.set = lambda weight, with_canary=True: proxy.apply(nginx.render(
        proxy.directory, port, stable.port, canary.port if with_canary else None, weight))
    proxy.set(0, with_canary=False)
    yield proxy, port, stable, canary
    proxy.stop()
    for backend in (stable, canary):
        backend.shutdown()
        backend.server_close()


def read(path):
    """A file's text."""
    with open(path, encoding="utf-8") as text:
        return text.read()


def send(port, count, path=INFER, method="POST"):
    """[(status, assigned track, answering track)] of `count` requests."""
    results = []
    for _ in range(count):
        status, body = runtime.http(port, method, path, {"x": 1} if method == "POST" else None)
        results.append((status, body.get("track") if isinstance(body, dict) else None))
    return results


@pytest.mark.parametrize("weight", [0, 30, 100])
def test_requests_split_by_weight(front, weight):
    proxy, port, _, _ = front
    proxy.set(weight)
    answers = send(port, 600)
    share = 100.0 * sum(track == "canary" for _, track in answers) / len(answers)
    assert all(status == 200 for status, _ in answers)
    # Binomial spread at n=600, p=0.3: sd 1.9 points; 6 points is > 3 sd.
    assert abs(share - weight) <= 6, share


def test_split_is_per_request_not_sticky(front):
    proxy, port, _, _ = front
    proxy.set(50)
    tracks = [track for _, track in send(port, 60)]
    changes = sum(a != b for a, b in zip(tracks, tracks[1:]))
    assert changes > 10  # one client, one connection: still both tracks, interleaved


def test_failing_canary_prediction_is_answered_by_stable(front):
    proxy, port, stable, canary = front
    canary.fail = True
    proxy.set(100)
    answers = send(port, 20)
    assert answers == [(200, "stable")] * 20
    assert canary.hits == 20 and stable.hits == 20  # every request tried canary first


def test_non_prediction_post_is_not_retried(front):
    proxy, port, stable, canary = front
    canary.fail = True
    proxy.set(100)
    assert send(port, 5, path="/v1/other") == [(500, "canary")] * 5
    assert stable.hits == 0


def test_failing_canary_get_is_retried(front):
    proxy, port, _, canary = front
    canary.fail = True
    proxy.set(100)
    assert send(port, 5, path="/v2/models/iris", method="GET") == [(200, "stable")] * 5


def test_dead_canary_costs_no_request(front):
    proxy, port, _, canary = front
    proxy.set(50)
    canary.shutdown()
    canary.socket.close()
    assert all(answer == (200, "stable") for answer in send(port, 30))


def test_weight_changes_under_load_drop_no_request(front):
    proxy, port, _, _ = front
    load = loadgen.LoadGenerator(port, loadgen.Request(INFER, b"{}"), rate=200, threads=4,
                                 max_s=30).start()
    for weight in (10, 25, 50, 100, 0, 30, 60, 0, 100, 10):
        proxy.set(weight)
        time.sleep(0.3)
    records = load.stop()
    assert len(records) > 300
    assert loadgen.failed(records) == []
    assert {r.track for r in records} == {"stable", "canary"}


def test_reload_is_a_signal_to_the_same_master(front):
    proxy, _, _, _ = front
    pid = proxy.pid()
    assert pid is not None
    proxy.set(40)
    assert proxy.pid() == pid
    assert "40% canary;" in read(proxy.conf)


def test_bad_config_is_refused_before_it_replaces_the_running_one(front):
    proxy, _, _, _ = front
    good = read(proxy.conf)
    with pytest.raises(Exception, match="generated nginx config is invalid"):
        proxy.apply("this is not nginx;")
    assert read(proxy.conf) == good


def status_of(port, method, path):
    """The status of one request with `path` sent exactly as written (no client clean-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def test_every_public_route_is_routed_but_metrics_never_reaches_a_track(front):
    proxy, port, stable, canary = front
    proxy.set(50)
    for path in contract.api_paths():
        method = "POST" if path.endswith(("/infer", "/predict")) else "GET"
        assert status_of(port, method, path) == 200, path
    served = stable.paths + canary.paths
    assert sorted(set(served)) == contract.api_paths()
    for spelling in contract.METRICS_SPELLINGS:
        assert status_of(port, "GET", spelling) == 404, spelling
    assert stable.paths + canary.paths == served, "a /metrics request reached a track"
