"""What the release tests share: a real registry with htpasswd, one image build,
images derived from it, and the CLI run as a user runs it.

The image is built once per test session from a clean clone of the source tree
at HEAD (so its labels say "clean" whatever the state of the working copy),
with a private buildah storage. The second release is that image restamped as
if built from the next commit (an empty commit on top: same content, a new
git SHA and commit time in its labels, so a new config and a new digest);
the dirty image is it restamped as build.py stamps a dirty tree.
"""

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time

from tools.release import cli, server
from tools.release.tests import small_images

BUILDER = "tools/image/build.py"
IMAGE = "modelship-digits"
# The digits image's spec (model_image in services/digits/BUILD), in the runfiles.
SPEC_ARGS = ["--spec-runfile", "services/digits/image.spec"]
USER = "releaser"
# What `bazel run //services/digits:image.release` passes the release CLI: validate
# runs that image's gates (the end-to-end target has it in its runfiles).
RELEASE_SPEC = ["--spec-runfile", "services/digits/image.spec"]


def workspace():
    """The source tree this test was built from (WORKSPACE in runfiles links back)."""
    return os.path.dirname(os.path.realpath("WORKSPACE"))


def git(cwd, *args):
    """Output of a git command."""
    return subprocess.run(["git", "-C", cwd] + list(args), check=True, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.strip()


def clean_clone(dest):
    """A clone of the source tree at HEAD, with a committer for later commits."""
    subprocess.run(["git", "clone", "--quiet", "--shared", workspace(), dest], check=True)
    git(dest, "config", "user.email", "release-tests@example.invalid")
    git(dest, "config", "user.name", "release tests")
    return dest


def build_production(tree, out, scratch):
    """Builds the production image of `tree` as `bazel run //:image` does, with a private
    storage; returns (archive path, report)."""
    env = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=tree)
    proc = subprocess.run(
        [sys.executable, BUILDER, "--target", "production", "--out", out, *SPEC_ARGS,
         "--storage", os.path.join(scratch, "storage"),
         "--context", os.path.join(scratch, "context")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert proc.returncode == 0, f"image build failed:\n{proc.stdout[-4000:]}"
    with open(os.path.join(out, IMAGE + ".json"), encoding="utf-8") as report:
        return os.path.join(out, IMAGE + ".oci.tar"), json.load(report)


def remove_storage(scratch):
    """Drops a private buildah storage (unmounting what buildah left mounted)."""
    storage = os.path.join(scratch, "storage")
    subprocess.run(["buildah", "--root", os.path.join(storage, "root"), "--runroot",
                    os.path.join(storage, "run"), "rmi", "--all", "--force"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["umount", "-R", os.path.join(storage, "root", "overlay")],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    shutil.rmtree(scratch, ignore_errors=True)


def _blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as out:
        out.write(data)
    return "sha256:" + digest, len(data)


def _read_blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as blob:
        return blob.read()


def restamp(archive, dest, scratch, labels):
    """An OCI archive of `archive`'s image with some config labels changed (same layers):
    a new config, a new manifest, a new digest. Returns dest."""
    layout = os.path.join(scratch, "layout")
    with tarfile.open(archive) as tar:
        tar.extractall(layout)  # our own build's archive
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as text:
        index = json.load(text)
    manifest = json.loads(_read_blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(_read_blob(layout, manifest["config"]["digest"]))
    config["config"]["Labels"].update(labels)
    digest, size = _blob(layout, json.dumps(config, separators=(",", ":")).encode())
    manifest["config"].update(digest=digest, size=size)
    digest, size = _blob(layout, json.dumps(manifest, separators=(",", ":")).encode())
    index["manifests"][0].update(digest=digest, size=size)
    with open(os.path.join(layout, "index.json"), "w", encoding="utf-8") as out:
        json.dump(index, out)
    with tarfile.open(dest, "w") as tar:
        for name in sorted(os.listdir(layout)):
            tar.add(os.path.join(layout, name), arcname=name)
    shutil.rmtree(layout)
    return dest


def manifest_digest(archive):
    """The digest of an archive's image, as the registry will name it."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    return index["manifests"][0]["digest"]


class TestRegistry:
    """A real docker-registry on loopback with htpasswd auth, and its credentials."""

    def __init__(self, root):
        self.root = root
        self.password = secrets.token_urlsafe(18)
        htpasswd = os.path.join(root, "htpasswd")
        server.add_user(htpasswd, USER, self.password)
        self.process = server.Registry(root, htpasswd=htpasswd)

    @property
    def address(self):
        """host:port."""
        return self.process.address

    def start(self):
        """Starts (or restarts, on the same port and storage) the registry."""
        self.process.start()

    def env(self, repository, **extra):
        """The environment a release job would have: registry, repository, credentials,
        and short retries (tests must not wait 30 s for a registry that is gone)."""
        env = {"MODELSHIP_REGISTRY": self.address, "MODELSHIP_REPOSITORY": repository,
               "MODELSHIP_REGISTRY_USER": USER, "MODELSHIP_REGISTRY_PASSWORD": self.password,
               "MODELSHIP_REGISTRY_RETRIES": "3", "MODELSHIP_REGISTRY_BACKOFF_S": "0.2",
               # Signatures are the subject of test_signed_release (which turns this
               # back on with keys); elsewhere the images are unsigned.
               "MODELSHIP_VERIFY": "0",
               "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(extra)
        return env


class TokenRegistry(TestRegistry):
    """A real docker-registry with token authentication (`auth: token`): its realm is a
    token server on another loopback port (tests/token_server.py) that checks the
    user's password and signs JWTs with a certificate the registry trusts."""

    def __init__(self, root):  # pylint: disable=super-init-not-called
        from tools.release.tests import token_server  # pylint: disable=import-outside-toplevel
        self.root = root
        self.password = secrets.token_urlsafe(18)
        self.tokens = token_server.TokenServer(root, USER, self.password).start()
        self.process = server.Registry(root, token=self.tokens.registry_auth())

    def stop(self):
        """Stops the registry and its token server."""
        self.process.stop()
        self.tokens.stop()


def releasable_labels(seed):
    """Complete, clean labels of a made-up release (`seed` makes them unique)."""
    sha = hashlib.sha1(seed.encode()).hexdigest()
    return {"org.opencontainers.image.revision": sha,
            "org.opencontainers.image.version": sha[:12],
            "org.opencontainers.image.created": "2026-12-01T00:00:00Z",
            "io.modelship.model.name": "digits-mlp",
            "io.modelship.model.version": hashlib.sha256(seed.encode()).hexdigest(),
            "io.modelship.model.metric": "test_accuracy=0.98",
            "io.modelship.api.version": "1.0"}


def push_image(client, labels, tag=None):
    """Pushes a small one-layer image with these labels through the distribution API
    (no build: for tests of what the tool reads, not of the image); returns its digest."""
    return small_images.push(
        client, [{"labels.json": json.dumps(labels, sort_keys=True).encode()}],
        config={"Labels": labels}, tag=tag)


def run_cli(capsys, env, *argv):
    """(exit status, stdout, stderr) of the release CLI, run as `bazel run` runs it."""
    capsys.readouterr()
    with _environ(env):
        status = cli.main(list(argv), environ=env)
    out, err = capsys.readouterr()
    return status, out, err


@contextlib.contextmanager
def _environ(env):
    # skopeo and dockerd children inherit os.environ; give them the job's.
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def wait_gone(address, deadline_s=10):
    """Waits until nothing answers at address."""
    end = time.monotonic() + deadline_s
    while server.answers(address, timeout_s=0.5):
        assert time.monotonic() < end, f"{address} still answers"
        time.sleep(0.05)
