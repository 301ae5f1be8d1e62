"""Fixtures: one real registry and one image build per test session."""

import os
import time

import pytest

from tools.release import server
from tools.release.tests import support


@pytest.fixture(name="registry", scope="session")
def fixture_registry(tmp_path_factory):
    """A docker-registry on a free loopback port, htpasswd auth on; stopped afterwards."""
    registry = support.TestRegistry(str(tmp_path_factory.mktemp("registry")))
    registry.start()
    yield registry
    registry.process.stop()


@pytest.fixture(name="token_registry", scope="session")
def fixture_token_registry(tmp_path_factory):
    """A docker-registry with token authentication, its token server on another loopback
    port; both stopped afterwards."""
    registry = support.TokenRegistry(str(tmp_path_factory.mktemp("token-registry")))
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture(name="plain_registry", scope="session")
def fixture_plain_registry(tmp_path_factory):
    """A docker-registry without authentication; stopped afterwards."""
    process = server.Registry(str(tmp_path_factory.mktemp("plain-registry"))).start()
    yield process
    process.stop()


@pytest.fixture(name="images", scope="session")
def fixture_images(tmp_path_factory):
    """The production image built once from a clean clone, and images derived from it:
    {"first", "second", "dirty"} archive paths, their "digests", the first's "report"."""
    scratch = str(tmp_path_factory.mktemp("build"))
    tree = support.clean_clone(os.path.join(scratch, "tree"))
    out = os.path.join(scratch, "dist")
    try:
        first, report = support.build_production(tree, out, os.path.join(scratch, "buildah"))
    finally:
        support.remove_storage(os.path.join(scratch, "buildah"))
    support.git(tree, "commit", "--quiet", "--allow-empty", "-m", "second release")
    sha = support.git(tree, "rev-parse", "HEAD")
    second = support.restamp(first, os.path.join(out, "second.oci.tar"), scratch, {
        "org.opencontainers.image.revision": sha,
        "org.opencontainers.image.version": sha[:12],
        # As the build writes it: UTC, "Z" (tools/image/labels.py, type "time").
        "org.opencontainers.image.created": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(support.git(tree, "log", "-1", "--format=%ct")))),
    })
    dirty = support.restamp(first, os.path.join(out, "dirty.oci.tar"), scratch, {
        "org.opencontainers.image.version":
            report["labels"]["org.opencontainers.image.revision"][:12] + "-dirty",
    })
    archives = {"first": first, "second": second, "dirty": dirty}
    return dict(archives, report=report, second_sha=sha,
                digests={k: support.manifest_digest(v) for k, v in archives.items()})
