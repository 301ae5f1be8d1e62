"""SLSA v1 provenance of an image, and the reproducibility attestation.

    statement = slsa_provenance(image_name=..., digest="sha256:...", ...)

`slsa_provenance` returns an in-toto Statement v1 whose predicate
(https://slsa.dev/provenance/v1) says what was built (the image digest), from
what (the source at its commit, every wheel and Debian package of the locks the
image uses, the Bazel repositories WORKSPACE pins by content, the model
artifact), how (modelship's build type: buildah with --network none and
--timestamp SOURCE_DATE_EPOCH) and by whom (the builder, the CI job). Everything
comes from the checkout (`workspace`), so two runs give equal statements but for
the fields that name the run: runDetails.metadata.invocationId, startedOn and
finishedOn (PER_RUN_FIELDS).

`reproducibility_predicate` is the predicate of
https://modelship.dev/attestations/reproducible/v1: an independent clean
rebuild of the same commit gave the same digest.
"""

import base64
import datetime
import hashlib
import os
import re
import subprocess

from tools.trust import sbom
from tools.trust.errors import TrustError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://modelship.dev/buildtypes/image/v1"
REPRODUCIBLE = "https://modelship.dev/attestations/reproducible/v1"
# The predicate fields that differ between two runs of the same build.
PER_RUN_FIELDS = ("runDetails.metadata.invocationId", "runDetails.metadata.startedOn",
                  "runDetails.metadata.finishedOn")
# The locks an image build reads: what production ships (base.lock, runtime.txt) and
# what its dev stage builds with (the compiler, Cython, pip).
DEBIAN_LOCKS = ("third_party/debian/base.lock", "third_party/debian/dev.lock")
PYTHON_LOCKS = ("third_party/python/runtime.txt", "third_party/python/imagedev.txt")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_SHA = re.compile(r"[0-9a-f]{40}\Z")
_RULE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(\s*$(.*?)^\)", re.MULTILINE | re.DOTALL)
_ATTR = re.compile(r'^\s*([a-z_0-9]+)\s*=\s*"([^"]*)"', re.MULTILINE)


def workspace_pins(text):
    """[{name, rule, sha256 | sha512, ...string attributes}] of the repository rules of a
    WORKSPACE file that pin their content (a `sha256` or an `integrity` attribute)."""
    pins = []
    for match in _RULE.finditer(text):
        attrs = dict(_ATTR.findall(match.group(2)))
        if "name" not in attrs:
            continue
        entry = {"rule": match.group(1), **attrs}
        integrity = entry.pop("integrity", "")
        if integrity.startswith("sha512-"):
            entry["sha512"] = base64.b64decode(integrity[len("sha512-"):]).hex()
        if "sha256" in entry or "sha512" in entry:
            pins.append(entry)
    return sorted(pins, key=lambda p: p["name"])


def model_source(purl, pins):
    """The SBOM's model-source entry for a package URL (the spec's `model_source`), with
    the sha256 a WORKSPACE pin of the same requirement holds; None for ''."""
    if not purl:
        return None
    match = re.fullmatch(r"pkg:([a-z]+)/(?:[^@/]+/)?([^@/]+)@([^?#]+)", purl)
    if not match:
        raise TrustError(f"model source {purl!r} is not a package URL "
                         f"(pkg:<type>/<name>@<version>); fix the model_image's model_source")
    name, version = match.group(2), match.group(3)
    entry = {"name": name, "version": version, "purl": purl}
    for pin in pins:
        requirement = pin.get("requirement", "")
        if requirement and sbom.normalize(requirement.split("==")[0]) == sbom.normalize(name) \
                and requirement.split("==")[-1] == version and pin.get("sha256"):
            entry["sha256"] = pin["sha256"]
            entry["repository"] = "@" + pin["name"]
    return entry


def _commit_time(workspace, git_sha):
    """The commit's time (what the image build uses when SOURCE_DATE_EPOCH is unset)."""
    proc = subprocess.run(["git", "-C", workspace, "show", "-s", "--format=%ct", git_sha],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          check=False)
    return proc.stdout.strip() if proc.returncode == 0 else f"the commit time of {git_sha}"


def _check(value, pattern, field):
    if not isinstance(value, str) or not pattern.match(value):
        raise TrustError(f"provenance: {field} {value!r} is not valid "
                         f"({'sha256:<64 hex>' if pattern is _DIGEST else '40 hex'} expected)")


def _time(value, field):
    """RFC 3339 UTC of a datetime, an epoch or an RFC 3339 string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as err:
            raise TrustError(f"provenance: {field} {value!r} is not an RFC 3339 time") from err
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise TrustError(f"provenance: {field} must be a time with a zone, got {value!r}")
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def modelship_root():
    """The folder holding modelship's own locks: this repository's root (the checkout,
    a runfiles tree, or @modelship's folder in a team's workspace)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolved_dependencies(workspace, *, source_url, git_sha, model=None, locks_root=None):
    """The resourceDescriptors of what the image was built from (sorted by name within
    each group): the source, the wheels and the Debian packages of the locks the build
    reads (each annotated with its lock; read under `locks_root`, default `workspace`),
    the repositories the workspace's WORKSPACE pins, the model artifact.
    `model`: {name, sha256, uri} or None."""
    locks_root = locks_root or workspace
    deps = [{"uri": f"git+{source_url}@{git_sha}", "digest": {"gitCommit": git_sha},
             "name": "source"}]
    for lock in PYTHON_LOCKS:
        pins = sbom.read_python_lock(os.path.join(locks_root, lock))
        for name, (version, hashes) in sorted(pins.items()):
            # The lock allows one file per platform: every pinned hash is listed, the
            # image used one of them (its SBOM names which).
            for digest in sorted(hashes):
                deps.append({"uri": f"pkg:pypi/{name}@{version}", "name": name,
                             "digest": {"sha256": digest}, "annotations": {"lock": lock}})
    for lock in DEBIAN_LOCKS:
        for entry in sbom.read_debian_lock(os.path.join(locks_root, lock)):
            deps.append({"uri": sbom.deb_purl(entry["name"], entry["version"], entry["arch"]),
                         "name": entry["name"], "digest": {"sha256": entry["sha256"]},
                         "annotations": {"lock": lock}})
    try:
        with open(os.path.join(workspace, "WORKSPACE"), encoding="utf-8") as text:
            pins = workspace_pins(text.read())
    except FileNotFoundError:
        pins = []
    for pin in pins:
        digest = {k: pin[k] for k in ("sha256", "sha512") if k in pin}
        deps.append({"uri": f"bazel-repository:{pin['name']}", "name": "@" + pin["name"],
                     "digest": digest,
                     "annotations": {k: v for k, v in sorted(pin.items())
                                     if k not in ("name", "sha256", "sha512")}})
    if model:
        deps.append({"uri": model.get("uri") or f"modelship-model:{model['name']}",
                     "name": model["name"], "digest": {"sha256": model["sha256"]}})
    return deps


# pylint: disable-next=too-many-arguments
def slsa_provenance(*, image_name, digest, repository, git_sha, source_url, target,
                    builder_id, invocation_id, started_on, finished_on, workspace,
                    model=None, locks_root=None):
    """An in-toto Statement v1 with a SLSA v1 provenance predicate for one image.

    image_name: the image's name (the spec's image_name); digest: the image manifest's
    'sha256:<hex>'; repository: where it is pushed (registry/path, no tag) - the subject
    is <repository>@<digest>'s name; git_sha: the commit built; source_url: the project's
    URL (tools/image/source-url.txt); target: the Bazel target of the image
    (//services/digits:image); builder_id: a URI naming the builder (the CI runner);
    invocation_id: the CI job's URL; started_on, finished_on: datetimes (or epochs, or
    RFC 3339) of the build; workspace: the checkout holding the locks and WORKSPACE;
    model: {name, sha256, uri} of the model artifact (uri optional), or None.
    Deterministic except PER_RUN_FIELDS."""
    _check(digest, _DIGEST, "digest")
    _check(git_sha, _SHA, "git_sha")
    for field, value in (("image_name", image_name), ("repository", repository),
                         ("source_url", source_url), ("target", target),
                         ("builder_id", builder_id), ("invocation_id", invocation_id)):
        if not isinstance(value, str) or not value.strip():
            raise TrustError(f"provenance: {field} must be a non-empty string, got {value!r}")
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or _commit_time(workspace, git_sha)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {"sha256": digest.split(":", 1)[1]},
                     "annotations": {"image_name": image_name}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"source": source_url, "revision": git_sha,
                                       "target": target},
                "internalParameters": {
                    "SOURCE_DATE_EPOCH": epoch,
                    "buildah": "build --network none --timestamp $SOURCE_DATE_EPOCH",
                },
                "resolvedDependencies": resolved_dependencies(
                    workspace, source_url=source_url, git_sha=git_sha, model=model,
                    locks_root=locks_root),
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {"invocationId": invocation_id,
                             "startedOn": _time(started_on, "started_on"),
                             "finishedOn": _time(finished_on, "finished_on")},
            },
        },
    }


def reproducibility_predicate(*, digest, rebuild_digest, git_sha, builder_id, invocation_id):
    """The predicate of REPRODUCIBLE: a clean independent rebuild of `git_sha` gave
    `rebuild_digest`, equal to the published `digest` (a TrustError when they differ:
    there is nothing to attest)."""
    _check(digest, _DIGEST, "digest")
    _check(rebuild_digest, _DIGEST, "rebuild_digest")
    _check(git_sha, _SHA, "git_sha")
    if digest != rebuild_digest:
        raise TrustError(f"the rebuild of {git_sha} gave {rebuild_digest}, not {digest}: the "
                         f"build is not reproducible; compare the two with diffoscope "
                         f"(`bazel run //<pkg>:image.repro`)")
    return {"revision": git_sha, "digest": {"sha256": digest.split(":", 1)[1]},
            "rebuild": {"digest": {"sha256": rebuild_digest.split(":", 1)[1]},
                        "builder": {"id": builder_id}, "invocationId": invocation_id},
            "reproducible": True}


def statement(subject_name, digest, predicate_type, predicate):
    """An in-toto Statement v1 around any predicate (e.g. reproducibility_predicate)."""
    _check(digest, _DIGEST, "digest")
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": subject_name, "digest": {"sha256": digest.split(":", 1)[1]}}],
            "predicateType": predicate_type, "predicate": predicate}


def digest_of(data):
    """'sha256:<hex>' of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
