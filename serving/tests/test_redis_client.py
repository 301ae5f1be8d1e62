"""The small Redis client (redis_client.py) against a real redis-server: replies, errors, auth."""

import asyncio

import pytest

from serving import redis_client as resp
from serving.tests import redis_harness as harness


@pytest.fixture(name="locked_redis")
def fixture_locked_redis():
    """A redis-server that requires a password."""
    server = harness.RedisServer(password="s3cret-pass")
    server.start()
    yield server
    server.stop()


def _run(coro):
    return asyncio.run(coro)


def test_every_reply_type_reads_back_as_python_values(redis_server):
    async def run():
        client = resp.Client(redis_server.url)
        replies = await client.execute(("SET", "k", b"\x00\r\nbinary"), ("GET", "k"),
                                       ("GET", "absent"), ("INCR", "n"),
                                       ("MGET", "k", "absent"), ("PING",))
        await client.aclose()
        return replies

    assert _run(run()) == [b"OK", b"\x00\r\nbinary", None, 1, [b"\x00\r\nbinary", None],
                           b"PONG"]


def test_an_error_reply_fills_its_slot_and_the_pipeline_goes_on(redis_server):
    async def run():
        client = resp.Client(redis_server.url)
        replies = await client.execute(("SET", "s", "text"), ("INCR", "s"), ("GET", "s"))
        await client.aclose()
        return replies

    ok, error, value = _run(run())
    assert ok == b"OK" and value == b"text"
    assert isinstance(error, resp.ReplyError)
    assert "not an integer" in str(error)


def test_set_many_sets_values_with_an_expiry_and_mget_finds_them(redis_server):
    async def run():
        client = resp.Client(redis_server.url)
        await client.set_many([(b"a", b"1"), (b"b", b"2")], ttl_s=100)
        found = await client.mget([b"a", b"b", b"c"])
        ttl = (await client.execute(("TTL", "a")))[0]
        await client.aclose()
        return found, ttl

    found, ttl = _run(run())
    assert found == [b"1", b"2", None]
    assert 90 < ttl <= 100


def test_the_client_reconnects_after_the_server_restarts(redis_server):
    async def run():
        client = resp.Client(redis_server.url)
        await client.set_many([(b"x", b"1")], ttl_s=60)
        redis_server.stop()
        with pytest.raises(resp.RedisError):
            await client.mget([b"x"])
        redis_server.start()  # same port, empty (no persistence)
        found = await client.mget([b"x"])
        await client.aclose()
        return found

    assert _run(run()) == [None]


def test_a_cancelled_call_does_not_leave_a_half_read_reply_behind(redis_server):
    async def run():
        client = resp.Client(redis_server.url)
        await client.set_many([(b"k", b"v")], ttl_s=60)
        slow = asyncio.ensure_future(client.execute(("BLPOP", "empty-list", "1")))
        await asyncio.sleep(0.1)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        found = await client.mget([b"k"])  # must not read BLPOP's late reply
        await client.aclose()
        return found

    assert _run(run()) == [b"v"]


def test_the_password_from_the_url_is_sent_and_a_wrong_one_is_refused(locked_redis):
    async def run(url):
        client = resp.Client(url)
        try:
            return await client.mget([b"k"])
        finally:
            await client.aclose()

    assert _run(run(locked_redis.url)) == [None]
    with pytest.raises(resp.ReplyError) as wrong:
        _run(run(locked_redis.url.replace("s3cret-pass", "wrong")))
    assert "WRONGPASS" in str(wrong.value) or "invalid" in str(wrong.value)
    assert "s3cret" not in str(wrong.value) and "wrong@" not in str(wrong.value)
    with pytest.raises(resp.ReplyError, match="NOAUTH"):
        _run(run(locked_redis.url.replace(":s3cret-pass@", "")))


def test_the_database_number_of_the_url_is_selected(redis_server):
    async def run():
        client = resp.Client(redis_server.url.replace("/0", "/3"))
        await client.set_many([(b"only-in-3", b"1")], ttl_s=60)
        await client.aclose()

    _run(run())
    assert redis_server.dbsize() == 0  # db 0 is untouched
    assert b"db3:keys=1" in redis_server.command("INFO", "keyspace")


@pytest.mark.parametrize("url, problem", [
    ("http://h:1/0", "scheme"),
    ("redis:///0", "no host"),
    ("redis://h:1/x", "number"),
])
def test_bad_urls_are_refused_with_the_reason(url, problem):
    with pytest.raises(resp.RedisError, match=problem):
        resp.Client(url)


def test_the_address_never_shows_the_password():
    assert "pw" not in repr(resp.Address("redis://:pw@h:1/2"))


@pytest.mark.parametrize("url, shown", [
    ("redis://:pw-1@h:1/2", "redis://***@h:1/2"),
    ("rediss://user:pw-1@h:1/2", "rediss://***@h:1/2"),
    ("redis://user:p/w@1@h:1/2", "redis://***@h:1/2"),  # an unencoded password
    ("redis://h:1/2", "redis://h:1/2"),
    ("unix:///run/redis.sock?db=1&password=pw-1", "unix:///run/redis.sock?db=1&password=***"),
    ("redis://:pw-1@h:port/0", "redis://***@h:port/0"),
    ("pw-1", "<not a URL; value not shown>"),
])
def test_urls_are_shown_without_user_or_password(url, shown):
    assert resp.redact_url(url) == shown


@pytest.mark.parametrize("url", ["redis://:pw-1@h:port/0", "http://u:pw-1@h:1/0",
                                 "redis://:pw-1@/0", "redis://:pw-1@h:1/x"])
def test_a_bad_url_error_never_shows_the_password(url):
    with pytest.raises(resp.RedisError) as caught:
        resp.Client(url)
    assert "pw-1" not in str(caught.value)
    assert "***@" in str(caught.value)


def _roundtrip(url, tls=None):
    async def run():
        client = resp.Client(url, tls=tls)
        try:
            await client.set_many([(b"k", b"over tls")], ttl_s=60)
            return await client.mget([b"k"])
        finally:
            await client.aclose()

    return _run(run())


def test_rediss_verifies_the_server_against_the_given_ca_and_works(tls_redis, tls_files):
    assert _roundtrip(tls_redis.url, resp.tls_context(tls_files.ca_cert)) == [b"over tls"]


def test_a_server_certificate_from_another_ca_is_refused_with_the_fix(tls_redis, tls_files):
    for context in (resp.tls_context(tls_files.other_ca_cert), None):  # None: system CAs
        with pytest.raises(resp.RedisError) as refused:
            _roundtrip(tls_redis.url, context)
        message = str(refused.value)
        assert "TLS certificate is not trusted" in message
        assert "MODELSHIP_REDIS_CA_FILE" in message
        assert tls_redis.password not in message


def test_a_certificate_for_another_host_name_is_refused(tls_redis, tls_files):
    other_name = tls_redis.url.replace("localhost", harness.HOST)  # the same server
    with pytest.raises(resp.RedisError, match="not trusted"):
        _roundtrip(other_name, resp.tls_context(tls_files.ca_cert))


def test_a_client_certificate_is_sent_to_a_server_that_asks(tls_files):
    server = harness.RedisServer(tls=tls_files, client_certs=True)
    server.start()
    try:
        with pytest.raises(resp.RedisError):
            _roundtrip(server.url, resp.tls_context(tls_files.ca_cert))
        with_cert = resp.tls_context(tls_files.ca_cert, tls_files.client_cert,
                                     tls_files.client_key)
        assert _roundtrip(server.url, with_cert) == [b"over tls"]
    finally:
        server.stop()


def test_tls_to_a_plain_server_says_so(redis_server, tls_files):
    plain_as_tls = redis_server.url.replace("redis://127.0.0.1", "rediss://localhost")
    # redis-server waits for the end of a command line that never comes.
    with pytest.raises(resp.RedisError, match="no TLS connection within 1 s; is the server "
                                              r"reachable, and speaking TLS on this port"):
        _roundtrip(plain_as_tls, resp.tls_context(tls_files.ca_cert))
