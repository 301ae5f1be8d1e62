"""Fixtures: the real service and a real redis-server, each on a free loopback port."""

import pytest

from services.digits.tests import harness
from serving.tests.conftest import fixture_redis_server, fixture_tls_files, fixture_tls_redis

# The runtime's redis-server fixtures (plain, TLS), shared rather than copied:
# pytest registers the fixtures a conftest module holds.
SHARED_FIXTURES = (fixture_redis_server, fixture_tls_files, fixture_tls_redis)


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
