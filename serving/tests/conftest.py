"""Fixtures: a real redis-server (plain, or TLS with a test CA) on a free loopback port."""

import pytest

from serving.tests import redis_harness


@pytest.fixture(name="redis_server")
def fixture_redis_server():
    """A redis-server on a free loopback port (no persistence), stopped afterwards."""
    redis = redis_harness.RedisServer()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(name="tls_files")
def fixture_tls_files(tmp_path):
    """A test CA, a server and a client certificate it signed, and an unrelated CA."""
    folder = tmp_path / "tls"
    folder.mkdir()
    return redis_harness.TlsFiles(str(folder))


@pytest.fixture(name="tls_redis")
def fixture_tls_redis(tls_files):
    """A redis-server that speaks only TLS (certificate for localhost) and needs a password."""
    redis = redis_harness.RedisServer(password="tls-pass-0f9e", tls=tls_files)
    redis.start()
    yield redis
    redis.stop()
