"""What the cosign tests share: a real docker-registry with htpasswd on, clients of
its repositories, small pushed images, keys.

Test modules register the fixtures by naming them (pytest collects the fixtures a
test module holds): `SHARED_FIXTURES = (fixture_registry,)`.
"""

import hashlib
import io
import json
import os
import secrets
import tarfile

import pytest

from tools.release import registry as release_registry
from tools.release import server, settings
from tools.trust import keys

USER = "signer"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


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
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        data = seed.encode()
        info = tarfile.TarInfo("seed.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = layer.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}},
                        sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config), "digest": client.push_blob(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "size": len(layer), "digest": client.push_blob(layer)}],
    }, sort_keys=True).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    client.put_manifest(tag or digest, OCI_MANIFEST, manifest)
    return digest


def unique(name):
    """A repository name no other test uses."""
    return f"trust/{name}-{secrets.token_hex(4)}"
