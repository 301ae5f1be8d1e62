"""Readiness, overload, the Redis cache and graceful shutdown, on real processes."""

import asyncio
import concurrent.futures
import json
import time

import pytest

from serving import redis_client
from serving.app import AsgiApp, Service
from services.digits.tests import harness

IMAGES, _ = harness.images(64)

# The Redis row cache itself: no whole-answer cache in front of it, so every repeat
# reaches Redis.
REDIS_ROWS = {"MODELSHIP_CACHE": "redis", "MODELSHIP_RESPONSE_CACHE_BYTES": "0"}


def _poll(condition, deadline_s=20.0, what="condition"):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} not reached within {deadline_s} s")


def test_not_ready_until_the_model_is_loaded_and_warmed_up_then_ready():
    config = harness.config({"MODELSHIP_MODEL_PATH": harness.model_path()})

    async def body():
        return b""

    async def run():
        service = Service(config)

        def get(path):
            return service.handle("GET", path, lambda name: None, lambda limit: body())

        before = [await get("/v2/health/live"), await get("/v2/health/ready"),
                  await get("/v2/models/digits/ready"),
                  await service.handle("POST", "/v1/predict",
                                       {"content-type": "application/json"}.get,
                                       lambda limit: body())]
        await service.start()
        after = [await get("/v2/health/ready"), await get("/v2/models/digits/ready")]
        await service.stop(1)
        return before, after

    before, after = asyncio.run(run())
    assert [r.status for r in before] == [200, 503, 503, 503]
    assert b'"ready":false' in before[1].body
    assert b"still loading" in before[3].body
    assert [r.status for r in after] == [200, 200]


def test_the_asgi_adapter_loads_on_startup_serves_and_drains_on_shutdown():
    config = harness.config({"MODELSHIP_MODEL_PATH": harness.model_path()})
    body = json.dumps({"instances": IMAGES[:2], "top_k": 1}).encode()

    async def run():
        app = AsgiApp(config)
        lifespan = asyncio.Queue()
        sent = []

        async def send(message):
            sent.append(message)

        await lifespan.put({"type": "lifespan.startup"})
        task = asyncio.ensure_future(app({"type": "lifespan"}, lifespan.get, send))
        while app.service.state != "ready":
            await asyncio.sleep(0.01)
        chunks = [{"type": "http.request", "body": body[:10], "more_body": True},
                  {"type": "http.request", "body": body[10:]}]

        async def receive():
            return chunks.pop(0)

        await app({"type": "http", "method": "POST", "path": "/v1/predict",
                   "headers": [(b"content-type", b"application/json")]}, receive, send)
        await lifespan.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 10)
        return sent

    sent = asyncio.run(run())
    kinds = [m["type"] for m in sent]
    assert kinds == ["lifespan.startup.complete", "http.response.start", "http.response.body",
                     "lifespan.shutdown.complete"]
    assert sent[1]["status"] == 200
    assert len(json.loads(sent[2]["body"])["predictions"]) == 2


def test_a_full_queue_answers_503_with_retry_after(start_server):
    server = start_server(MODELSHIP_MAX_BATCH_SIZE="64", MODELSHIP_MAX_QUEUE_ROWS="64",
                          MODELSHIP_MAX_QUEUE_DELAY_MS="3000", MODELSHIP_RETRY_AFTER_S="2",
                          MODELSHIP_CACHE="off")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(server.post, "/v1/predict", {"instances": IMAGES[:60]})
        _poll(lambda: server.metric("modelship_queue_depth_rows") == 60, what="60 rows queued")
        refused = server.post("/v1/predict", {"instances": IMAGES[:10]})
        assert refused.status == 503
        assert refused.headers["retry-after"] == "2"
        assert "at capacity" in refused.json()["error"]
        assert waiting.result(timeout=30).status == 200


def test_sigterm_drains_in_flight_requests_before_exiting(start_server):
    server = start_server(MODELSHIP_MAX_QUEUE_DELAY_MS="1500", MODELSHIP_MAX_BATCH_SIZE="1024",
                          MODELSHIP_CACHE="off")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(server.post, "/v1/predict", {"instances": IMAGES[:3]})
        _poll(lambda: server.metric("modelship_queue_depth_rows") == 3, what="request queued")
        server.terminate()
        response = in_flight.result(timeout=30)
    assert response.status == 200, response
    assert len(response.json()["predictions"]) == 3
    assert server.process.wait(timeout=30) == 0
    with pytest.raises(OSError):
        server.get("/v2/health/live", timeout=2)


def test_redis_cache_serves_repeats_and_a_dead_redis_never_fails_a_request(start_server,
                                                                           redis_server):
    server = start_server(**REDIS_ROWS, MODELSHIP_REDIS_URL=redis_server.url,
                          MODELSHIP_REDIS_TIMEOUT_MS="200")
    request = {"instances": IMAGES[:4]}
    first = server.post("/v1/predict", request)
    assert first.status == 200
    _poll(lambda: redis_server.dbsize() == 4, what="4 entries written to Redis")
    second = server.post("/v1/predict", request)
    assert second.json() == first.json()
    assert server.metric("modelship_cache_hits_total", backend="redis") == 4
    assert server.metric("modelship_cache_misses_total", backend="redis") == 4

    redis_server.stop()
    for _ in range(3):
        response = server.post("/v1/predict", {"instances": IMAGES[4:6]})
        assert response.status == 200, response
    assert server.metric("modelship_cache_errors_total", backend="redis") >= 1


def _corrupt_every_entry(redis):
    async def run():
        client = redis_client.Client(redis.url)
        (keys,) = await client.execute(("KEYS", "*"))
        await client.set_many([(key, b"\x00" * 7) for key in keys], ttl_s=60)
        await client.aclose()
        return len(keys)

    return asyncio.run(run())


def test_a_corrupt_value_in_redis_is_a_miss_never_a_500(start_server, redis_server):
    server = start_server(**REDIS_ROWS, MODELSHIP_REDIS_URL=redis_server.url,
                          MODELSHIP_REDIS_TIMEOUT_MS="500")
    request = {"instances": IMAGES[:3]}
    first = server.post("/v1/predict", request)
    assert first.status == 200, first
    _poll(lambda: redis_server.dbsize() == 3, what="3 entries written to Redis")
    assert _corrupt_every_entry(redis_server) == 3
    again = server.post("/v1/predict", request)
    assert again.status == 200, again
    assert again.json() == first.json()
    assert server.metric("modelship_cache_errors_total", backend="redis") == 3
    assert "3 cached value(s) are not a row of 10 probabilities" in server.output()
    _poll(lambda: server.post("/v1/predict", request).status == 200 and server.metric(
        "modelship_cache_hits_total", backend="redis") >= 3, what="the rewritten entries hit")


def test_a_tls_redis_serves_as_cache_with_the_configured_ca(start_server, tls_redis, tls_files):
    server = start_server(**REDIS_ROWS, MODELSHIP_REDIS_URL=tls_redis.url,
                          MODELSHIP_REDIS_CA_FILE=tls_files.ca_cert,
                          MODELSHIP_REDIS_TIMEOUT_MS="500")
    request = {"instances": IMAGES[:4]}
    first = server.post("/v1/predict", request)
    assert first.status == 200, first
    _poll(lambda: tls_redis.dbsize() == 4, what="4 entries written over TLS")
    assert server.post("/v1/predict", request).json() == first.json()
    assert server.metric("modelship_cache_hits_total", backend="redis") == 4
    assert server.metric("modelship_cache_errors_total", backend="redis") == 0


@pytest.mark.parametrize("trouble", ["a CA that did not sign the server", "a wrong password",
                                     "nothing listening"])
def test_redis_trouble_never_fails_a_request_nor_shows_the_password(
        start_server, tls_files, trouble):
    password = "never-print-6a1f"
    if trouble == "a CA that did not sign the server":
        redis = harness.RedisServer(password=password, tls=tls_files)
        env = {"MODELSHIP_REDIS_URL": redis.url, "MODELSHIP_REDIS_CA_FILE": tls_files.other_ca_cert}
        expected = "the server's TLS certificate is not trusted"
    elif trouble == "a wrong password":
        redis = harness.RedisServer(password="the-right-one")
        env = {"MODELSHIP_REDIS_URL": redis.url.replace("the-right-one", password)}
        expected = "WRONGPASS"
    else:
        redis = harness.RedisServer()
        env = {"MODELSHIP_REDIS_URL": f"redis://user:{password}@{harness.HOST}:{redis.port}/0"}
        expected = "ConnectionRefusedError"
    if trouble != "nothing listening":
        redis.start()
    try:
        server = start_server(**REDIS_ROWS, MODELSHIP_REDIS_TIMEOUT_MS="500",
                              MODELSHIP_LOG_LEVEL="debug", **env)
        for i in range(3):
            response = server.post("/v1/predict", {"instances": IMAGES[i:i + 2]})
            assert response.status == 200, response
        assert server.metric("modelship_cache_errors_total", backend="redis") >= 1
        metrics = server.get("/metrics").body.decode()
        output = server.output()
    finally:
        redis.stop()
    assert expected in output, output
    assert password not in output + metrics
