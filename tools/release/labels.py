"""The labels a releasable image must carry, and what they must agree with.

The keys and their types are declared once, in tools/image/labels.py; this
module re-exports them (`from tools.release import labels; labels.SERVED_NAME`
keeps working wherever the declarations live) and adds the release rules.
"""

import re

from tools.image import labels as _declared
from tools.release import errors

# Re-exported, so `tools.release.labels.<KEY>` is the same constant everywhere.
KEYS = _declared.KEYS
TITLE = _declared.TITLE
REVISION = _declared.REVISION
CREATED = _declared.CREATED
VERSION = _declared.VERSION
SOURCE = _declared.SOURCE
BASE_NAME = _declared.BASE_NAME
MODEL_NAME = _declared.MODEL_NAME
MODEL_VERSION = _declared.MODEL_VERSION
MODEL_METRIC = _declared.MODEL_METRIC
MODEL_FORMAT_VERSION = _declared.MODEL_FORMAT_VERSION
MODEL_OUTPUT_SCHEMA_VERSION = _declared.MODEL_OUTPUT_SCHEMA_VERSION
SERVED_NAME = _declared.SERVED_NAME
API_VERSION = _declared.API_VERSION
type_problems = _declared.type_problems

# SERVED_NAME is not required: images built before it was added stay releasable
# (and promotable back to by a rollback).
REQUIRED = (REVISION, VERSION, CREATED, MODEL_NAME, MODEL_VERSION, MODEL_METRIC, API_VERSION)
UNSTAMPED = "0" * 40
_SHA1 = re.compile(r"^[0-9a-f]{40}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


# How to get a label the build writes only when the declaration has what it needs.
_MISSING_HINTS = {
    API_VERSION: (" (the image was declared without its API contract: check in the service's "
                  "openapi.json with a contract.update target, serving/update_contract.py, and "
                  "give it to model_image as `contract`)"),
}


def problems(labels):
    """Every way these labels fall short of a releasable image (empty when fine)."""
    found = [f"label {key} is missing" + _MISSING_HINTS.get(key, "")
             for key in REQUIRED if not labels.get(key)]
    revision = labels.get(REVISION, "")
    if revision and not _SHA1.match(revision):
        found.append(f"label {REVISION}={revision!r} is not a 40-hex git SHA")
    elif revision == UNSTAMPED:
        found.append(f"label {REVISION} is the unstamped placeholder: build without "
                     "--unstamped")
    version = labels.get(VERSION, "")
    if version.endswith("-dirty"):
        found.append(f"label {VERSION}={version!r}: the image was built from a dirty tree; "
                     "commit the changes and rebuild")
    elif revision and version and version != revision[:12]:
        found.append(f"label {VERSION}={version!r} does not match {REVISION} "
                     f"({revision[:12]}...)")
    model_version = labels.get(MODEL_VERSION, "")
    if model_version and not _SHA256.match(model_version):
        found.append(f"label {MODEL_VERSION}={model_version!r} is not a sha256 hex digest")
    return found


def require_releasable(labels, what):
    """Raises RefusedError listing every problem of the labels of `what`."""
    found = problems(labels)
    if found:
        raise errors.RefusedError(f"{what} is not releasable: " + "; ".join(found))


def metrics(labels):
    """{name: value} of the headline metric label (`test_accuracy=0.97`)."""
    name, _, value = labels.get(MODEL_METRIC, "").partition("=")
    try:
        return {name: float(value)} if name else {}
    except ValueError:
        return {name: value}
