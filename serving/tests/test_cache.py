"""Result cache backends: same semantics in memory and in a real Redis; failures are misses."""

import array
import asyncio
import logging
import random

from serving import cache as cache_lib
from serving import redis_client
from serving.tests import redis_harness as harness

ROW = 10  # probabilities per image: the digits model's ten labels
P0 = cache_lib.encode([0.5] + [0.5 / 9] * 9)
P1 = cache_lib.encode([0.0] * 9 + [1.0])


class Counts:
    """Cache statistics callbacks that count."""

    def __init__(self):
        self.hits = self.misses = self.errors = 0

    def stats(self):
        """A cache_lib.Stats feeding these counts."""
        return cache_lib.Stats(hit=self._hit, miss=self._miss, error=self._error)

    def _hit(self, n=1):
        self.hits += n

    def _miss(self, n=1):
        self.misses += n

    def _error(self, n=1):
        self.errors += n


def _rows(n, seed=0):
    rng = random.Random(seed)
    return [[float(rng.randint(0, 16)) for _ in range(64)] for _ in range(n)]


def test_keys_depend_on_model_version_and_pixels_only():
    x = _rows(2)
    keys = cache_lib.Keys("a" * 64).of(x)
    assert keys == cache_lib.Keys("a" * 64).of([list(row) for row in x])
    assert keys[0] != keys[1]
    assert keys != cache_lib.Keys("b" * 64).of(x)
    assert cache_lib.Keys("a" * 64).of(x[1:]) == keys[1:]


def test_probability_rows_survive_the_cache_bytes_exactly():
    row = array.array("f", [0.99973851, 3.0778327e-07, 1.0, 0.0]).tolist()  # model output
    assert cache_lib.decode(cache_lib.encode(row)) == row
    assert len(cache_lib.encode([0.5] * 10)) == 40


def test_memory_cache_is_bounded_and_evicts_the_least_recently_used():
    counts = Counts()
    cache = cache_lib.MemoryCache(max_entries=3, stats=counts.stats())
    keys = [bytes([i]) * 16 for i in range(4)]

    async def run():
        cache.put_many(keys[:3], [b"v0", b"v1", b"v2"])
        assert await cache.get_many([keys[0]]) == [b"v0"]  # 0 is now the most recent
        cache.put_many(keys[3:], [b"v3"])
        return await cache.get_many(keys)

    assert asyncio.run(run()) == [b"v0", None, b"v2", b"v3"]
    assert len(cache) == 3
    assert (counts.hits, counts.misses) == (4, 1)


def test_redis_cache_stores_and_finds_entries_with_a_ttl(redis_server):
    counts = Counts()

    async def run():
        cache = cache_lib.RedisCache(redis_server.url, timeout_s=1.0, ttl_s=60,
                                     namespace="t", row_size=ROW, stats=counts.stats())
        keys = cache_lib.Keys("a" * 64).of(_rows(3))
        assert await cache.get_many(keys) == [None, None, None]
        cache.put_many(keys[:2], [P0, P1])
        await cache.close()  # waits for the background write
        cache = cache_lib.RedisCache(redis_server.url, timeout_s=1.0, ttl_s=60,
                                     namespace="t", row_size=ROW, stats=counts.stats())
        found = await cache.get_many(keys)
        await cache.close()
        return found

    assert asyncio.run(run()) == [P0, P1, None]
    assert (counts.hits, counts.misses, counts.errors) == (2, 4, 0)
    assert redis_server.dbsize() == 2
    assert b"keys=2,expires=2" in redis_server.command("INFO", "keyspace")  # both have a TTL


def test_redis_down_is_answered_as_misses_and_counted_never_raised(redis_server):
    counts = Counts()
    redis_server.stop()

    async def run():
        cache = cache_lib.RedisCache(redis_server.url, timeout_s=0.2, ttl_s=60,
                                     namespace="t", row_size=ROW, stats=counts.stats())
        keys = cache_lib.Keys("a" * 64).of(_rows(2))
        first = await cache.get_many(keys)
        cache.put_many(keys, [P0, P1])  # skipped during the back-off
        second = await cache.get_many(keys)
        await cache.close()
        return first, second

    first, second = asyncio.run(run())
    assert first == second == [None, None]
    assert counts.errors == 1  # the second call skipped Redis instead of waiting on it
    assert counts.misses == 4


def test_a_cached_value_in_redis_that_is_not_a_probability_row_is_a_counted_miss(caplog):
    locked = harness.RedisServer(password="cache-pw-7d1c")
    locked.start()
    counts = Counts()
    nan = cache_lib.encode([float("nan")] + [0.1] * 9)
    negative = cache_lib.encode([-0.5] + [0.1] * 9)
    corrupt = [b"short", P0 + b"\x00", nan, negative]

    async def run():
        writer = redis_client.Client(locked.url)
        keys = cache_lib.Keys("a" * 64).of(_rows(5))
        await writer.set_many([(b"t:" + k, v) for k, v in zip(keys, corrupt + [P1])], 60)
        cache = cache_lib.RedisCache(locked.url, timeout_s=1.0, ttl_s=60, namespace="t",
                                     row_size=ROW, stats=counts.stats())
        found = await cache.get_many(keys)
        # What the service does with the misses; not skipped: a bad value is no outage.
        cache.put_many(keys[:4], [P0] * 4)
        await cache.close()  # waits for the write
        again = await writer.mget([b"t:" + k for k in keys])
        await writer.aclose()
        return found, again

    try:
        with caplog.at_level(logging.WARNING, logger="serving.cache"):
            found, again = asyncio.run(run())
    finally:
        locked.stop()
    assert found == [None, None, None, None, P1]
    assert again == [P0, P0, P0, P0, P1]
    assert (counts.hits, counts.misses, counts.errors) == (1, 4, 4)
    logged = caplog.text
    assert "4 cached value(s) are not a row of 10 probabilities" in logged
    assert "5, 40, 41 bytes, expected 40" in logged
    assert "cache-pw-7d1c" not in logged and "short" not in logged


def test_kept_answers_stay_within_their_byte_bound_least_recent_out_first():
    bound = 3 * (100 + cache_lib.Responses.OVERHEAD)
    kept = cache_lib.Responses(max_bytes=bound, model_version="v1")
    keys = [kept.key("infer", f"body {i}".encode()) for i in range(4)]
    for i, key in enumerate(keys[:3]):
        kept.put(key, [("content-type", "application/json")], bytes(100), rows=i + 1)
    assert kept.get(keys[0])[2] == 1  # now the most recent
    kept.put(keys[3], [], bytes(100), rows=4)
    assert kept.get(keys[1]) is None  # the least recent went
    assert [kept.get(k)[2] for k in (keys[0], keys[2], keys[3])] == [1, 3, 4]
    assert kept.size <= bound
    # An answer bigger than the whole bound is not kept (and evicts nothing).
    kept.put(kept.key("infer", b"huge"), [], bytes(10_000), rows=1)
    assert len(kept) == 3


def test_answer_keys_depend_on_the_model_version_the_route_and_the_body():
    one, two = cache_lib.Responses(1 << 20, "v1"), cache_lib.Responses(1 << 20, "v2")
    assert one.key("infer", b"{}") != two.key("infer", b"{}")
    assert one.key("infer", b"{}") != one.key("task", b"{}")
    assert one.key("infer", b"{}") != one.key("infer", b"{ }")
    assert one.key("infer", b"{}") == cache_lib.Responses(1, "v1").key("infer", b"{}")


def test_an_answer_with_a_made_up_request_id_is_kept_in_two_parts_around_it():
    kept = cache_lib.Responses(1 << 20, "v1")
    key = kept.key("infer", b"{}")
    kept.put(key, [], b'{"id":"0123abcd","outputs":[]}', rows=1, made_up_id="0123abcd")
    assert kept.get(key)[1] == (b'{"id":"', b'","outputs":[]}')
    other = kept.key("infer", b"{ }")
    kept.put(other, [], b'{"id":"given"}', rows=1, made_up_id="not-in-it")
    assert kept.get(other)[1] == (b'{"id":"given"}',)
