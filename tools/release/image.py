"""What the release tool reads from an image: labels, the model file inside it."""

import gzip
import io
import json
import re
import subprocess
import tarfile
import tempfile

from tools.release import errors
from tools.release import registry as registry_lib

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


def require_digest(text):
    """Refuses anything but `sha256:<64 hex>` (a tag would move under our feet)."""
    if not DIGEST.match(text or ""):
        hint = ""
        if text and "@" in text:
            hint = " (give only the part after '@')"
        elif text and not text.startswith("sha256:"):
            hint = " (that looks like a tag; promote by digest, e.g. the one publish printed)"
        raise errors.UsageError(f"--digest {text!r} is not a digest sha256:<64 hex>{hint}")
    return text


def archive_labels(archive):
    """Labels of an OCI archive (as `bazel run //<pkg>:image` writes it)."""
    with tempfile.TemporaryDirectory(prefix="modelship-skopeo-") as scratch:
        # skopeo unpacks the archive: in a private folder, not the shared /var/tmp.
        proc = subprocess.run(["skopeo", "--tmpdir", scratch, "inspect", "--config",
                               f"oci-archive:{archive}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
    if proc.returncode != 0:
        last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise errors.UsageError(f"--archive {archive} is not a readable OCI archive "
                                f"(build it with `bazel run //<pkg>:image`): {last}")
    return json.loads(proc.stdout).get("config", {}).get("Labels") or {}


class Pushed:
    """An image in the registry, by digest: its manifest, config and labels."""

    def __init__(self, client, digest):
        self.client = client
        self.digest = require_digest(digest)
        try:
            _, self.manifest_bytes, self.manifest = client.manifest(digest)
        except errors.NotFoundError as err:
            raise errors.RefusedError(
                f"{client.settings.base}@{digest} does not exist; publish it first "
                f"(`bazel run //<pkg>:image.release -- publish`)") from err
        if registry_lib.sha256_digest(self.manifest_bytes) != digest:
            raise errors.RegistryError(f"registry {client.name} served another manifest for "
                                       f"{digest}")
        if "layers" not in self.manifest:
            raise errors.RefusedError(f"{digest} is an index or an artifact, not an image "
                                      f"manifest")
        self.config_digest = self.manifest["config"]["digest"]
        self.config = json.loads(client.blob(self.config_digest))
        self.labels = (self.config.get("config") or {}).get("Labels") or {}

    @property
    def reference(self):
        """`<registry>/<repository>@<digest>`."""
        return f"{self.client.settings.base}@{self.digest}"

    def file(self, path):
        """The bytes of a file in the image (from the topmost layer that has it)."""
        for layer in reversed(self.manifest["layers"]):
            data = self.client.blob(layer["digest"])
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for name in (path, "./" + path):
                    try:
                        member = tar.getmember(name)
                    except KeyError:
                        continue
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
        raise errors.RefusedError(f"{self.reference} holds no /{path}")
