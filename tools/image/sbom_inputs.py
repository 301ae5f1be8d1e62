"""The host's half of the image's SBOM: sbom/inputs.json in the build context.

What only the side preparing the context knows goes there: the Debian packages
of the production root filesystem (third_party/debian/base.lock) with the
licences of their copyright files, read from the .deb files; the model (its
sha256, the target that builds it, the package URL of what it is converted
from, with the sha256 the WORKSPACE pins for it); the commit, its time and the
source URL. The dev stage completes it with what is installed
(`tools/trust/sbom.py generate`, the Dockerfile).
"""

import os

from inference import artifact
from tools.trust import provenance, sbom
from tools.trust.errors import TrustError

INPUTS = os.path.join("sbom", "inputs.json")


def prepare(ctx, *, framework, workspace, debs, spec, model, stamped):
    """Writes <ctx>/sbom/inputs.json; TrustError naming what is wrong.

    framework: modelship's root (its Debian lock); workspace: the image's (its
    WORKSPACE pins); debs: the folder of the fetched .deb files; spec: the
    image's checked Spec; model: the model artifact's path; stamped: (git SHA,
    SOURCE_DATE_EPOCH, source URL)."""
    sha, epoch, source = stamped
    try:
        debian = sbom.debian_packages(
            os.path.join(framework, "third_party", "debian", "base.lock"), debs)
        with open(os.path.join(workspace, "WORKSPACE"), encoding="utf-8") as text:
            pins = provenance.workspace_pins(text.read())
        loaded = artifact.read(model)
        name = loaded.header["model"]["name"]
    except (KeyError, TypeError, ValueError) as err:
        raise TrustError(f"SBOM inputs: the model {model} names no model.name in its "
                         f"header ({err!r})") from err
    inputs = sbom.context_inputs(
        image_name=spec.image_name, revision=sha, epoch=epoch, source_url=source,
        debian=debian,
        model={"name": name, "file": spec.model_file, "sha256": loaded.version,
               "target": spec.model_target or spec.model.path,
               "source": provenance.model_source(spec.model_source, pins) or ""})
    path = os.path.join(ctx, INPUTS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(sbom.dumps(inputs))
    # COPY keeps the context's modes: no umask in the image.
    os.chmod(os.path.dirname(path), 0o755)
    os.chmod(path, 0o644)
    return path
