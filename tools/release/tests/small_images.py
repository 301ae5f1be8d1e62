"""Small OCI images pushed through the distribution API: for tests of what the tools
read from a registry (labels, files, signatures), with no image build."""

import hashlib
import io
import json
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def tar_of(files):
    """A tar (bytes) holding {path: bytes}, deterministic."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def push(client, layers, config=None, tag=None):
    """Pushes an image whose layers hold the given {path: bytes} dicts, in order, and
    whose config's `config` is `config` (labels, env); returns its digest."""
    blobs = [tar_of(files) for files in layers]
    image_config = {"architecture": "amd64", "os": "linux",
                    "rootfs": {"type": "layers",
                               "diff_ids": ["sha256:" + hashlib.sha256(b).hexdigest()
                                            for b in blobs]}}
    if config is not None:
        image_config["config"] = config
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config_bytes), "digest": client.push_blob(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": len(b),
                    "digest": client.push_blob(b)} for b in blobs],
    }, sort_keys=True).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    client.put_manifest(tag or digest, OCI_MANIFEST, manifest)
    return digest
