"""Every OCI label key modelship writes or reads, with the type of its value.

The one place label keys are declared: tools/image/build.py writes them,
tools/release checks them before a publish or a promote, tools/deploy and
CI read them. Import the constants (`labels.REVISION`), never spell a key.
`tools.release.labels` re-exports them (and adds the release rules).

Types (`Key.kind`):
  text      any non-empty string
  sha1      40 lower-case hexadecimal characters (a git commit)
  sha256    64 lower-case hexadecimal characters
  version   the first 12 hexadecimal characters of a git commit, `-dirty` appended when
            the tree had uncommitted changes
  time      RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`
  int       a whole number, in decimal
  metric    `<name>=<number>` (the model's headline metric)
  url       an http(s) URL
  digest    `sha256:<64 hex>`
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Key:
    """One label: its key, the type of its value, what it says."""

    key: str
    kind: str
    doc: str


_PATTERNS = {
    "text": re.compile(r"^\S(.*\S)?\Z", re.S),
    "sha1": re.compile(r"^[0-9a-f]{40}\Z"),
    "sha256": re.compile(r"^[0-9a-f]{64}\Z"),
    "version": re.compile(r"^[0-9a-f]{12}(-dirty)?\Z"),
    "time": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z"),
    "int": re.compile(r"^(0|[1-9][0-9]*)\Z"),
    "metric": re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\Z"),
    "url": re.compile(r"^https?://\S+\Z"),
    "digest": re.compile(r"^sha256:[0-9a-f]{64}\Z"),
}

OCI = "org.opencontainers.image"
NAMESPACE = "io.modelship"

# --- written by the image build (tools/image/build.py) -------------------------
TITLE = f"{OCI}.title"
REVISION = f"{OCI}.revision"
CREATED = f"{OCI}.created"
VERSION = f"{OCI}.version"
SOURCE = f"{OCI}.source"
BASE_NAME = f"{OCI}.base.name"
MODEL_NAME = f"{NAMESPACE}.model.name"
MODEL_VERSION = f"{NAMESPACE}.model.version"
MODEL_METRIC = f"{NAMESPACE}.model.metric"
MODEL_FORMAT_VERSION = f"{NAMESPACE}.model.format-version"
MODEL_OUTPUT_SCHEMA_VERSION = f"{NAMESPACE}.model.output-schema-version"
SERVED_NAME = f"{NAMESPACE}.model.served-name"
API_VERSION = f"{NAMESPACE}.api.version"
# --- written by tools/deploy on the images it derives --------------------------
DEPLOY_VARIANT = f"{NAMESPACE}.deploy.variant"
DEPLOY_DIGEST = f"{NAMESPACE}.deploy.digest"

KEYS = {entry.key: entry for entry in (
    Key(TITLE, "text", "the image's name (model_image's image_name)"),
    Key(REVISION, "sha1", "the git commit built; 40 zeros when built unstamped"),
    Key(CREATED, "time", "the commit's time (SOURCE_DATE_EPOCH), never the clock's"),
    Key(VERSION, "version", "the commit's first 12 hex characters, -dirty for a dirty tree"),
    Key(SOURCE, "url", "the project's URL (tools/image/source-url.txt)"),
    Key(BASE_NAME, "text", "the base the root filesystem comes from"),
    Key(MODEL_NAME, "text", "the model's name, from the artifact's header"),
    Key(MODEL_VERSION, "sha256", "the sha256 of the model file shipped in the image"),
    Key(MODEL_METRIC, "metric", "the headline metric of the release record and its value"),
    Key(MODEL_FORMAT_VERSION, "int", "the model artifact's format version"),
    Key(MODEL_OUTPUT_SCHEMA_VERSION, "int", "the version of the model's output schema"),
    Key(SERVED_NAME, "text", "the name clients call the model by: /v2/models/<it> "
                             "(model_image's served_name)"),
    Key(API_VERSION, "text", "info.version of the service's OpenAPI contract"),
    Key(DEPLOY_VARIANT, "text", "a variant image tools/deploy derived (drills)"),
    Key(DEPLOY_DIGEST, "digest", "the digest a tools/deploy local image was loaded from"),
)}

# What every image build writes (a contract adds API_VERSION).
BUILT = (TITLE, REVISION, CREATED, VERSION, SOURCE, BASE_NAME, MODEL_NAME, MODEL_VERSION,
         MODEL_METRIC, MODEL_FORMAT_VERSION, MODEL_OUTPUT_SCHEMA_VERSION, SERVED_NAME)
# Key prefixes the build owns: an image declaration may not set labels under them.
RESERVED_PREFIXES = ("org.opencontainers.", "io.modelship.", "io.buildah.")


def type_problems(labels):
    """Every label of ours whose value is not of its declared type (empty when fine).
    Keys not declared here are not checked; a missing key is not a problem here."""
    found = []
    for key in sorted(labels):
        entry = KEYS.get(key)
        value = labels[key]
        if entry is None:
            continue
        if not isinstance(value, str) or not _PATTERNS[entry.kind].match(value):
            found.append(f"label {key}={value!r} is not of type {entry.kind} "
                         f"({entry.doc})")
    return found


def undeclared(labels):
    """Keys under our prefixes (io.modelship., org.opencontainers.) declared nowhere here:
    a typo, or a label added without declaring it."""
    return sorted(key for key in labels
                  if key.startswith((f"{OCI}.", f"{NAMESPACE}.")) and key not in KEYS)


def headline_value(header, release, model_version):
    """The headline metric's value for the model: the artifact's own figure (measured at
    training or conversion), else the release record's when it was measured on this very
    model (its `version`, the artifact's sha256): a model whose quality is measured by its
    release gate rather than at conversion. None when neither holds it."""
    headline = release["headline_metric"]
    metrics = header.get("metrics")
    if isinstance(metrics, dict) and headline in metrics:
        return metrics[headline]
    recorded = release.get("metrics")
    if release.get("version") == model_version and isinstance(recorded, dict) \
            and headline in recorded:
        return recorded[headline]
    return None


def output_schema_version(header):
    """The version of what the model outputs: the artifact's `output.schema_version`,
    else the version of its whole schema (`schema_version`: a self-describing artifact
    schema such as the sentence encoder's covers its output). None when it has neither."""
    output = header.get("output")
    if isinstance(output, dict) and isinstance(output.get("schema_version"), int):
        return output["schema_version"]
    version = header.get("schema_version")
    return version if isinstance(version, int) else None
