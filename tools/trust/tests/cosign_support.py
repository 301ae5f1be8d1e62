"""What the cosign tests share: a real docker-registry with htpasswd on, clients of
its repositories, small pushed images, keys.

Test modules register the fixtures by naming them (pytest collects the fixtures a
test module holds): `SHARED_FIXTURES = (fixture_registry,)`.
"""

import os
import secrets

import pytest

from tools.release import registry as release_registry
from tools.release import server, settings
from tools.release.tests import small_images
from tools.trust import keys

USER = "signer"


class TestRegistry:
    """A docker-registry on a free loopback port with htpasswd auth, and its account."""

    def __init__(self, root):
        self.password = secrets.token_urlsafe(18)
        htpasswd = os.path.join(root, "htpasswd")
        server.add_user(htpasswd, USER, self.password)
        self.process = server.Registry(root, htpasswd=htpasswd)

    @property
    def address(self):
        """host:port."""
        return self.process.address

    def env(self, repository, **extra):
        """The release tool's settings for `repository`, with short retries."""
        env = {"MODELSHIP_REGISTRY": self.address, "MODELSHIP_REPOSITORY": repository,
               "MODELSHIP_REGISTRY_USER": USER, "MODELSHIP_REGISTRY_PASSWORD": self.password,
               "MODELSHIP_REGISTRY_RETRIES": "2", "MODELSHIP_REGISTRY_BACKOFF_S": "0.1"}
        env.update(extra)
        return env

    def client(self, repository):
        """A registry client of `repository` (the release tool's own)."""
        return release_registry.Client(settings.load(self.env(repository)))


@pytest.fixture(name="registry", scope="session")
def fixture_registry(tmp_path_factory):
    """One registry for the session; stopped afterwards."""
    registry = TestRegistry(str(tmp_path_factory.mktemp("registry")))
    registry.process.start()
    yield registry
    registry.process.stop()


@pytest.fixture(name="key_pair", scope="session")
def fixture_key_pair():
    """(private key, public key) of a new cosign key (made once: scrypt is slow)."""
    private_pem, public_pem = keys.generate_key_pair(b"session password")
    return (keys.load_private_key(private_pem, b"session password"),
            keys.load_public_key(public_pem))


def push_image(client, seed, tag=None):
    """Pushes a small one-layer OCI image whose content depends on `seed`; its digest."""
    return small_images.push(client, [{"seed.txt": seed.encode()}], config={}, tag=tag)


def unique(name):
    """A repository name no other test uses."""
    return f"trust/{name}-{secrets.token_hex(4)}"
