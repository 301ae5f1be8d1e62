"""`release validate` shows what it is doing while it runs (gates.Progress).

The operating-point gate sends hundreds of requests and the container start
takes a while: progress lines name the gate and the elapsed time, heartbeats
come while a step is silent, and stdout stays the report. Run against a real
HTTP server on loopback standing in for the container.
"""

import http.server
import io
import json
import re
import threading
import time
import types

import pytest

from tools.release import gates


class _Predict(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):  # pylint: disable=invalid-name
        """Answers every prediction after a few milliseconds."""
        self.seen.append((self.path, json.loads(self.rfile.read(
            int(self.headers["Content-Length"])))))
        time.sleep(0.004)
        body = json.dumps({"predictions": [{"label": "0"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        del args


BODIES = [{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [v]}]}
          for v in (1.0, 2.0, 3.0)]


@pytest.fixture(name="container")
def fixture_container():
    """A stand-in for the validated container: a real server, `docker stats` answered."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Predict)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    daemon = types.SimpleNamespace(
        docker=lambda *args: types.SimpleNamespace(stdout="52.5MiB / 1GiB"))
    yield types.SimpleNamespace(port=server.server_address[1], daemon=daemon,
                                name="release-validate")
    server.shutdown()
    server.server_close()


def test_operating_point_gate_reports_how_far_it_is(container):
    stream = io.StringIO()
    bounds = {"latency_p95_ms": 1000, "memory_mib": 200, "tolerance": 0.1,
              "requests": 120, "warmup_requests": 20}
    with gates.Progress(stream, heartbeat_s=0.1) as progress:
        checks = gates.operating_point_checks(container, bounds, "toy", BODIES, progress)
    assert all(check.ok for check in checks), checks
    lines = stream.getvalue().splitlines()
    counts = [int(m.group(1)) for m in
              (re.fullmatch(r"release: validate: operating point: (\d+)/140 requests sent "
                            r"\(\d+s\)", line) for line in lines) if m]
    assert len(counts) >= 2 and counts == sorted(counts) and counts[-1] < 140, lines


def test_operating_point_cycles_through_the_sample_requests_of_the_served_model(container):
    _Predict.seen.clear()
    bounds = {"latency_p95_ms": 1000, "memory_mib": 200, "tolerance": 0.1,
              "requests": 10, "warmup_requests": 2}
    checks = gates.operating_point_checks(container, bounds, "toy", BODIES)
    assert [c.figures for c in checks][1] == {"memory_mib": 52.5}
    assert {path for path, _ in _Predict.seen} == {"/v2/models/toy/infer"}
    assert [body for _, body in _Predict.seen] == (BODIES * 4)[:12]


def test_a_silent_step_gets_heartbeats_naming_it(capsys):
    with gates.Progress(heartbeat_s=0.2) as progress:
        progress.step("pulling sha256:0123456789ab into a private dockerd")
        time.sleep(0.9)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays the report
    lines = captured.err.splitlines()
    assert lines[0] == ("release: validate: pulling sha256:0123456789ab into a private "
                        "dockerd (0s)")
    beats = [line for line in lines if "still running" in line]
    assert len(beats) >= 2, lines
    assert all(re.fullmatch(r"release: validate: \.\.\. still running: pulling "
                            r"sha256:0123456789ab into a private dockerd \(\d+s\)", line)
               for line in beats), beats
