"""Result cache: one entry per input row, keyed by model version + the row's canonical bytes.

The key is a 128-bit BLAKE2b of the model version and the row: a classifier's
pixel values as little-endian float64 (`protocol` normalises them: ints as
floats, no negative zeros), a text encoder's text as UTF-8, so a new model
never sees an old model's results. The value is the row's output (float32
bytes: exact; 40 bytes for ten probabilities, 1,536 for a 384-number embedding).

Two backends with the same semantics (bounded, least recently used evicted):
- `MemoryCache`: an in-process LRU bounded by entries (about 250 bytes each).
- `RedisCache`: a Redis server (spoken to by `redis_client`), bounded
  by its own `maxmemory` with an LRU policy, plus a TTL on every entry. A
  slow, failing or absent Redis is never an error for the caller: a failed
  call is counted, answered as a miss, and Redis is skipped for `BACKOFF_S`
  so requests do not queue behind it. What Redis returns is not trusted: a
  value that is not a row of the model's size (of finite numbers, and
  probabilities from 0 to 1 for a classifier) is
  a miss, counted as an error and logged (its size only, never its content);
  the fresh result then overwrites it.
"""

import array
import asyncio
import collections
import hashlib
import logging
import sys
import time

from serving import redis_client

LOG = logging.getLogger(__name__)
_BIG_ENDIAN = sys.byteorder == "big"  # keys use little-endian float64 everywhere
_FLOAT32_MAX = 3.4028234663852886e38


class Stats:
    """Callbacks counting hits, misses and backend errors (metrics.py supplies them)."""

    def __init__(self, hit=None, miss=None, error=None):
        self.hit = hit or _ignore
        self.miss = miss or _ignore
        self.error = error or _ignore


class Keys:
    """Cache keys of images under one model version."""

    def __init__(self, model_version):
        self._prefix = hashlib.blake2b(model_version.encode("ascii") + b"\0", digest_size=16)

    def of(self, rows):
        """One key (bytes) per row of `rows` (lists of floats, canonical: see protocol;
        or texts)."""
        keys = []
        for row in rows:
            if isinstance(row, str):
                h = self._prefix.copy()
                h.update(b"text\0")
                h.update(row.encode("utf-8", "surrogatepass"))
                keys.append(h.digest())
                continue
            values = array.array("d", row)
            if _BIG_ENDIAN:
                values.byteswap()
            h = self._prefix.copy()
            h.update(values)
            keys.append(h.digest())
        return keys


def encode(row):
    """A probability row (floats holding float32 values) as cache bytes, exactly."""
    return array.array("f", row).tobytes()


def decode(value):
    """Cache bytes back to the probability row."""
    return array.array("f", value).tolist()


def valid(value, row_size, probabilities=True):
    """Whether `value` is the bytes of a row of `row_size` finite numbers: probabilities
    (0..1) when `probabilities`, any finite float32 otherwise."""
    if not isinstance(value, bytes) or len(value) != 4 * row_size:
        return False
    if probabilities:
        return all(0.0 <= p <= 1.0 for p in decode(value))  # also False for NaN
    return all(-_FLOAT32_MAX <= v <= _FLOAT32_MAX for v in decode(value))  # and NaN


def _ignore(n=1):
    del n


class NoCache:
    """No caching: every image is a miss (and not counted)."""

    name = "off"

    def __init__(self, stats=None):
        del stats

    async def get_many(self, keys):
        """All misses."""
        return [None] * len(keys)

    def put_many(self, keys, values):
        """Forgets."""

    async def close(self):
        """Nothing to release."""


class MemoryCache:
    """In-process LRU of at most `max_entries` rows."""

    name = "memory"

    def __init__(self, max_entries, stats=None):
        self._max = max_entries
        self._entries = collections.OrderedDict()
        self._stats = stats or Stats()

    def __len__(self):
        return len(self._entries)

    async def get_many(self, keys):
        """The cached value of each key, or None; hits become most recently used."""
        entries = self._entries
        out = []
        hits = 0
        for key in keys:
            value = entries.get(key)
            if value is not None:
                entries.move_to_end(key)
                hits += 1
            out.append(value)
        self._count(hits, len(keys) - hits)
        return out

    def put_many(self, keys, values):
        """Stores values, evicting the least recently used beyond the bound."""
        entries = self._entries
        for key, value in zip(keys, values):
            entries[key] = value
            entries.move_to_end(key)
        while len(entries) > self._max:
            entries.popitem(last=False)

    def _count(self, hits, misses):
        if hits:
            self._stats.hit(hits)
        if misses:
            self._stats.miss(misses)

    async def close(self):
        """Drops every entry."""
        self._entries.clear()


class RedisCache:
    """Redis-backed cache; every failure degrades to a miss (see the module docstring)."""

    name = "redis"
    BACKOFF_S = 1.0

    def __init__(self, url, timeout_s, ttl_s, namespace, row_size, stats=None, tls=None,
                 probabilities=True):
        self._redis = redis_client.Client(url, connect_timeout_s=timeout_s, tls=tls)
        self._row_size = row_size
        self._probabilities = probabilities
        self._timeout = timeout_s
        self._ttl = ttl_s
        self._prefix = f"{namespace}:".encode()
        self._stats = stats or Stats()
        self._skip_until = 0.0
        self._writes = set()  # strong references to background writes

    async def get_many(self, keys):
        """One MGET; on any failure, all misses."""
        if time.monotonic() < self._skip_until:
            self._stats.miss(len(keys))
            return [None] * len(keys)
        try:
            values = await asyncio.wait_for(
                self._redis.mget([self._prefix + k for k in keys]), self._timeout)
        except Exception as err:  # pylint: disable=broad-except
            self._failed("read", err)
            self._stats.miss(len(keys))
            return [None] * len(keys)
        if not isinstance(values, list) or len(values) != len(keys):
            self._failed("read", redis_client.RedisError(
                f"MGET of {len(keys)} keys answered {type(values).__name__} "
                f"{len(values) if isinstance(values, list) else ''}".rstrip()))
            self._stats.miss(len(keys))
            return [None] * len(keys)
        bad = {i for i, v in enumerate(values)
               if v is not None and not valid(v, self._row_size, self._probabilities)}
        if bad:
            self._corrupt(values, bad)
            values = [None if i in bad else v for i, v in enumerate(values)]
        hits = sum(v is not None for v in values)
        if hits:
            self._stats.hit(hits)
        if hits < len(keys):
            self._stats.miss(len(keys) - hits)
        return values

    def _corrupt(self, values, bad):
        # Not a Redis failure: the next call goes to Redis as usual, and the
        # recomputed rows overwrite these entries.
        self._stats.error(len(bad))
        sizes = sorted({len(values[i]) if isinstance(values[i], bytes) else -1 for i in bad})
        LOG.warning("redis cache: %d cached value(s) are not a row of %d probabilities "
                    "(%s bytes, expected %d); answered as misses and overwritten",
                    len(bad), self._row_size, ", ".join(map(str, sizes)), 4 * self._row_size)

    def put_many(self, keys, values):
        """Stores in the background: the response never waits for Redis."""
        if time.monotonic() < self._skip_until:
            return
        task = asyncio.get_running_loop().create_task(self._put(keys, values))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, keys, values):
        try:
            await asyncio.wait_for(
                self._redis.set_many([(self._prefix + k, v) for k, v in zip(keys, values)],
                                     self._ttl), self._timeout)
        except Exception as err:  # pylint: disable=broad-except
            self._failed("write", err)

    def _failed(self, what, err):
        self._stats.error()
        if time.monotonic() >= self._skip_until:
            LOG.warning("redis cache %s failed (%s: %s); skipping Redis for %.0f s",
                        what, type(err).__name__, err, self.BACKOFF_S)
        self._skip_until = time.monotonic() + self.BACKOFF_S

    async def close(self):
        """Waits briefly for background writes, then closes the connections."""
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=self._timeout * 2)
        try:
            await self._redis.aclose()
        except Exception:  # pylint: disable=broad-except
            pass


class Responses:
    """Whole answers to recent identical requests, keyed by the hash of the request.

    A request whose route and body bytes equal an earlier one's (the same
    images, options and request id) gets that earlier answer back without
    parsing, the model or serialising: the result cache's hit path taken one
    step earlier, where a hit costs one BLAKE2b over the body. Only successful
    answers are kept, in memory, least recently used evicted beyond
    `max_bytes` (answers plus about 200 bytes each); one model version only.
    Requests with binary tensor data are not kept (their answers may be large).
    An answer is kept as parts (`put`'s `body` split where its request id goes,
    when the server made that id up): a repeat of a request without an id gets
    a new id of its own, as every request does.
    """

    OVERHEAD = 200  # bytes per entry beyond the answer: key, tuple, dict slot

    def __init__(self, max_bytes, model_version):
        self._max = max_bytes
        self._size = 0
        self._entries = collections.OrderedDict()
        self._prefix = hashlib.blake2b(model_version.encode("ascii") + b"\0", digest_size=16)

    def __len__(self):
        return len(self._entries)

    @property
    def size(self):
        """Bytes held, as counted against `max_bytes`."""
        return self._size

    def key(self, route, body):
        """The key of a request: its route (name, version) and body bytes."""
        h = self._prefix.copy()
        h.update(route.encode())
        h.update(b"\0")
        h.update(body)
        return h.digest()

    def get(self, key):
        """(headers, body parts, rows) of the kept answer, or None; a hit becomes most
        recent. The body is the parts joined by a new request id (one part: as is)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key, headers, body, rows, made_up_id=None):
        """Keeps an answer (`rows`: images in it, counted as cache hits when reused);
        `made_up_id`: the request id the server made up for it, if it did."""
        size = len(body) + self.OVERHEAD
        if size > self._max or key in self._entries:
            return
        parts = (body,)
        if made_up_id is not None:
            parts = tuple(body.split(made_up_id.encode("ascii"), 1))
            if len(parts) != 2:  # not in the answer: nothing to replace
                parts = (body,)
        self._entries[key] = (tuple(headers), parts, rows)
        self._size += size
        while self._size > self._max:
            _, (_, old, _) = self._entries.popitem(last=False)
            self._size -= sum(map(len, old)) + self.OVERHEAD


def from_config(config, model_version, row_size, stats, probabilities=True):
    """The cache the configuration asks for; `row_size`: numbers per output row
    (probabilities when `probabilities`)."""
    if config.cache == "memory":
        return MemoryCache(config.cache_max_entries, stats)
    if config.cache == "redis":
        tls = None
        if config.redis_url.startswith("rediss:"):
            tls = redis_client.tls_context(config.redis_ca_file, config.redis_cert_file,
                                           config.redis_key_file)
        return RedisCache(config.redis_url, config.redis_timeout_ms / 1000.0, config.cache_ttl_s,
                          namespace=f"{config.model_name}:{model_version[:16]}",
                          row_size=row_size, stats=stats, tls=tls,
                          probabilities=probabilities)
    return NoCache(stats)
