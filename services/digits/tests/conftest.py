"""Fixtures: the real service and a real redis-server, each on a free loopback port."""

import pytest

from services.digits.tests import harness


@pytest.fixture(name="start_server")
def fixture_start_server():
    """A factory: start_server(**env) -> a running, ready Server; all stopped afterwards."""
    servers = []

    def start(wait_ready=True, **env):
        server = harness.Server(env)
        servers.append(server)
        server.start(wait_ready=wait_ready)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(name="server", scope="module")
def fixture_server():
    """One server with the default configuration, shared by a module's tests."""
    server = harness.Server({})
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="redis_server")
def fixture_redis_server():
    """A redis-server on a free loopback port (no persistence), stopped afterwards."""
    redis = harness.RedisServer()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture(name="tls_files")
def fixture_tls_files(tmp_path):
    """A test CA, a server and a client certificate it signed, and an unrelated CA."""
    folder = tmp_path / "tls"
    folder.mkdir()
    return harness.TlsFiles(str(folder))


@pytest.fixture(name="tls_redis")
def fixture_tls_redis(tls_files):
    """A redis-server that speaks only TLS (certificate for localhost) and needs a password."""
    redis = harness.RedisServer(password="tls-pass-0f9e", tls=tls_files)
    redis.start()
    yield redis
    redis.stop()
