"""Slow and unfinished request bodies, from real raw-socket clients against the real server.

What they prove: a body that does not arrive in time gets 408; requests
with a body are admitted only up to the in-flight bounds (503 beyond, before
reading); the worker's memory stays under its bound; and health answers
quickly throughout. Also the connection-level limits Granian enforces
(header deadline, header size) and the ASGI adapter's deadline.
"""

import asyncio
import json
import socket
import time

import pytest

from serving.app import AsgiApp
from services.digits.tests import harness

# Over Granian's default of 1,024 connections: on a server without a body
# deadline these would hold every connection slot, and health would wait.
TRICKLING = 1100
# The worst case of the default limits, measured (docs/benchmarks.md, "Slow and
# unfinished bodies"): the bound the README promises, far inside the pod's 256 MiB.
WORKER_RSS_BOUND_MIB = 160
JSON = {"Content-Type": "application/json"}
# Health answers in milliseconds here (docs/benchmarks.md); the margin is for a
# busy shared machine. Without the limits it does not answer at all.
HEALTH_S = 2.0


def _health_seconds(server):
    start = time.monotonic()
    response = server.get("/v2/health/live", timeout=10)
    assert response.status == 200, response
    return time.monotonic() - start


def test_trickling_bodies_get_408_at_the_deadline_while_health_answers(start_server):
    server = start_server()  # the defaults: a 10 s deadline
    clients = harness.SlowClients(server.port, TRICKLING, declared=100, sent=6)
    try:
        health = []
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            clients.pump(0.3)
            clients.trickle()
            health.append(_health_seconds(server))
        assert server.metric("modelship_requests_in_flight") == 512  # the default bound
        clients.pump(16.0)
        outcomes = clients.outcomes()
    finally:
        clients.close()
    assert max(health) < HEALTH_S, health
    statuses = [status for status, _, _, _ in outcomes]
    assert len(outcomes) == TRICKLING and set(statuses) <= {408, 503}, set(statuses)
    timed_out = [o for o in outcomes if o[0] == 408]
    assert len(timed_out) >= 512
    for _, head, body, seconds in timed_out:
        assert 9.9 < seconds < 16.0
        assert "connection: close" in head
        assert "MODELSHIP_BODY_TIMEOUT_S" in json.loads(body)["error"]
    for _, head, body, seconds in (o for o in outcomes if o[0] == 503):
        assert "retry-after: 1" in head
        assert "MODELSHIP_MAX_REQUESTS_IN_FLIGHT" in json.loads(body)["error"]
    assert server.metric("modelship_requests_in_flight") == 0
    assert server.metric("modelship_body_bytes_in_flight") == 0
    assert server.metric("modelship_http_requests_total", route="predict", method="POST",
                         status="408") == len(timed_out)
    assert server.post("/v1/predict", {"instances": [[0] * 64]}).status == 200


def test_unfinished_large_bodies_keep_the_worker_under_its_memory_bound(start_server):
    server = start_server()  # the defaults: the bound is theirs
    before = server.worker_rss_mib()
    declared = 1 << 20
    clients = harness.SlowClients(server.port, 300, declared=declared, sent=declared - 10)
    try:
        peak, health = before, []
        started = time.monotonic()
        while time.monotonic() - started < 4.0:
            clients.pump(0.2)
            peak = max(peak, server.worker_rss_mib())
            health.append(_health_seconds(server))
        admitted = server.metric("modelship_body_bytes_in_flight")
        refused = [o for o in clients.outcomes() if o[0] != 408]
    finally:
        clients.close()
    assert peak < WORKER_RSS_BOUND_MIB, (before, peak)
    assert max(health) < HEALTH_S, health
    assert admitted == 16 * declared  # the default MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT, full
    # The rest were refused before their bodies were read (503, or a reset when the
    # server closed with the client's bytes still unread).
    assert len(refused) >= 300 - 16


def test_a_request_head_slower_than_the_header_deadline_is_dropped(start_server):
    server = start_server(MODELSHIP_HEADER_TIMEOUT_S="1")
    with socket.create_connection((harness.HOST, server.port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server
        assert 0.9 < time.monotonic() - started < 5.0
    with socket.create_connection((harness.HOST, server.port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # an idle keep-alive connection is closed too
        assert 0.9 < time.monotonic() - started < 5.0


def test_a_request_head_over_the_header_limit_gets_431(start_server):
    server = start_server(MODELSHIP_MAX_HEADER_BYTES="8192")
    assert server.get("/v2/health/live", headers={"X-Pad": "a" * 7000}).status == 200
    assert server.get("/v2/health/live", headers={"X-Pad": "a" * 9000}).status == 431


def test_a_request_refused_for_its_size_holds_nothing(start_server):
    server = start_server(MODELSHIP_MAX_BODY_BYTES="1000",
                          MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT="1500")
    clients = harness.SlowClients(server.port, 1, declared=1000, sent=10)
    try:
        clients.pump(0.5)
        assert server.metric("modelship_body_bytes_in_flight") == 1000
        # 1,000 of 1,500 bytes are held: a 600-byte body does not fit, a 400-byte one does.
        refused = server.post("/v1/predict", b"{" + b" " * 598 + b"}", headers=JSON)
        assert refused.status == 503 and "MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT" in refused.json()[
            "error"]
        assert refused.headers["retry-after"] == "1"
        small = server.post("/v1/predict", {"instances": [[0] * 64]})
        assert small.status == 200, small
        assert server.post("/v1/predict", b"x" * 1001, headers=JSON).status == 413
        assert server.metric("modelship_body_bytes_in_flight") == 1000
    finally:
        clients.close()


@pytest.mark.parametrize("chunks", [
    pytest.param([], id="no body message at all"),
    pytest.param([{"type": "http.request", "body": b"{", "more_body": True}], id="a partial body"),
])
def test_the_asgi_adapter_answers_408_when_the_body_is_late(chunks):
    config = harness.config({"MODELSHIP_MODEL_PATH": harness.model_path(),
                             "MODELSHIP_BODY_TIMEOUT_S": "0.2"})

    async def run():
        app = AsgiApp(config)
        await app.service.start()
        sent, pending = [], list(chunks)

        async def receive():
            if pending:
                return pending.pop(0)
            await asyncio.sleep(3600)  # a client that never sends the rest
            raise AssertionError("not cancelled")

        async def send(message):
            sent.append(message)

        started = time.monotonic()
        await app({"type": "http", "method": "POST", "path": "/v1/predict",
                   "headers": [(b"content-type", b"application/json"),
                               (b"content-length", b"100")]}, receive, send)
        elapsed = time.monotonic() - started
        held = app.service.admission.requests, app.service.admission.bytes
        await app.service.stop(1)
        return sent, elapsed, held

    sent, elapsed, held = asyncio.run(run())
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert "did not arrive within 0.2 s" in json.loads(sent[1]["body"])["error"]
    assert 0.15 < elapsed < 2.0
    assert held == (0, 0)


def test_a_body_without_a_length_is_admitted_for_the_most_it_may_be(start_server):
    server = start_server(MODELSHIP_MAX_BODY_BYTES="1000",
                          MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT="1500")
    with socket.create_connection((harness.HOST, server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n")
        deadline = time.monotonic() + 10
        while server.metric("modelship_body_bytes_in_flight") != 1000:
            assert time.monotonic() < deadline, "the chunked request was not admitted"
            time.sleep(0.02)
        body = json.dumps({"instances": [[0] * 64]}).encode() + b" " * 400  # 610 bytes
        assert server.post("/v1/predict", body, headers=JSON).status == 503  # 1000 + 610 > 1500
        sock.sendall(b"0\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 400")  # '{"' is no request
    assert server.metric("modelship_body_bytes_in_flight") == 0
    assert server.post("/v1/predict", body, headers=JSON).status == 200
