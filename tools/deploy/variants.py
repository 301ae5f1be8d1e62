"""Images derived from a production archive, for deploy drills and tests.

A canary drill needs a second good release and a bad one. Both are made from
the production image with buildah, a layer or a label on top, so they start
in seconds and differ from production in exactly one known way:
  - `good`: the same image plus a label (a new digest, same behaviour);
  - `error` / `slow`: plus faults/sitecustomize.py first on PYTHONPATH and
    DRILL_FAULT set (see that file).
Production code carries no fault switch: the fault lives only in these images.
"""

import json
import os
import subprocess
import tarfile

from tools.containers import runtime
from tools.image import labels as label_keys

FAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faults")
# The label naming the model as clients address it (/v2/models/<served name>).
SERVED_NAME_LABEL = label_keys.SERVED_NAME
TITLE_LABEL = label_keys.TITLE
PRODUCTION_PYTHONPATH = "/opt/modelship/app:/opt/modelship/site"


def _buildah(storage, *args):
    argv = runtime.private_mounts(["buildah", "--root", os.path.join(storage, "root"),
                                   "--runroot", os.path.join(storage, "run")] + list(args))
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args[:2])} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def manifest_digest(archive):
    """The manifest digest of an OCI archive (index.json's single manifest)."""
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("index.json"))["manifests"][0]["digest"]


def labels(archive):
    """The image config's labels of an OCI archive (index.json's single manifest)."""
    with tarfile.open(archive) as tar:
        def blob(digest):
            algorithm, hexdigest = digest.split(":", 1)
            return json.load(tar.extractfile(f"blobs/{algorithm}/{hexdigest}"))
        index = json.load(tar.extractfile("index.json"))
        manifest = blob(index["manifests"][0]["digest"])
        config = blob(manifest["config"]["digest"])
    return dict((config.get("config") or {}).get("Labels") or {})


def derive(archive, out, storage, kind, name, delay_s=0.3):
    """Writes the `kind` variant of `archive` to `out`; returns its manifest digest."""
    work = _buildah(storage, "from", "--quiet", "--pull-never", "--name", f"variant-{name}",
                    f"oci-archive:{archive}")
    try:
        _buildah(storage, "config", "--label", f"{label_keys.DEPLOY_VARIANT}={name}", work)
        if kind in ("error", "slow"):
            _buildah(storage, "copy", "--chown", "0:0", work,
                     os.path.join(FAULTS, "sitecustomize.py"), "/opt/modelship/fault/")
            _buildah(storage, "config",
                     "--env", f"PYTHONPATH=/opt/modelship/fault:{PRODUCTION_PYTHONPATH}",
                     "--env", f"DRILL_FAULT={kind}",
                     "--env", f"DRILL_FAULT_DELAY_S={delay_s}", work)
        elif kind != "good":
            raise ValueError(f"unknown variant kind {kind!r}: good, error or slow")
        image = f"localhost/modelship-variant:{name}"
        _buildah(storage, "commit", "--quiet", work, image)
    finally:
        _buildah(storage, "rm", work)
    if os.path.exists(out):
        os.remove(out)
    _buildah(storage, "push", "--quiet", "--disable-compression", image,
             f"oci-archive:{out}:latest")
    return manifest_digest(out)
