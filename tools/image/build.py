"""Builds the images: the main job of this repository.

    bazel run //:image                      lint, test and production stages of the
                                            default image; writes dist/<name>.oci.tar
    bazel run //:image -- --target production --no-cache --out DIR
    bazel run //<pkg>:<name>                the image a model_image(name, ...) in
                                            <pkg>/BUILD declares (//modelship:defs.bzl)

What is particular to one image (its name, handler, model, contract, release
record, size budget, labels) comes from the image's spec, a JSON file that
model_image writes (`--spec-runfile`, passed by the generated target, or
`--spec`); nothing here names a model.

Steps, every input pinned and checked before the build starts:
  1. .deb files of third_party/debian/{base,dev}.lock (sha256 per file) ->
     two root filesystem tarballs, assembled bit for bit (rootfs.py);
  2. wheels of the Python locks (pip download --require-hashes);
  3. the model artifact and the sources, from this Bazel build and the tree (in
     a workspace that loads modelship's rules from `@modelship`, its own
     models/ and services/ from its tree, modelship's runtime, Dockerfile and
     locks from the modelship this file belongs to; examples/consumer);
  4. `buildah build --network none --timestamp <commit time>` for each stage,
     with OCI labels (git SHA, commit time, model version, API version);
  5. the production image written as an OCI archive; its digest, layers and
     labels printed and written to dist/<name>.json; over the spec's size
     budget, the build fails.
A missing or mismatching input stops the build with a message naming it.
"""

import argparse
import contextlib
import dataclasses
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

from tools import cli
from tools.containers import runtime
from tools.image import labels as labels_lib
from tools.image import progress, sbom_inputs

# The image's sources come from two places, which are one in this repository:
#   - modelship's: the serving runtime, the inference library and what the
#     image's own steps run (finalize.py, check.py), with the Dockerfile, the
#     Debian and Python locks. From the checkout or release this file is in
#     (MODELSHIP), when another workspace builds the image with modelship's rules;
#   - the workspace's own (its models and services), from its git tree.
FRAMEWORK_DIRS = ("inference", "serving", "tools/image")
OWN_DIRS = ("services", "models", "tests")
SOURCE_DIRS = FRAMEWORK_DIRS + OWN_DIRS
# tools/ modules the image's own steps import (finalize.py, check.py);
# tools/image/tests/test_shipped_sources.py fails when one is missing.
SOURCE_FILES = ("setup.cfg", "tools/__init__.py", "tools/check_settings.py",
                "tools/cython/__init__.py", "tools/cython/flags.py",
                "tools/trust/__init__.py", "tools/trust/errors.py", "tools/trust/sbom.py")
LOCKS = ("runtime", "imagedev")
# modelship's own root: the folder of the checkout (or release) holding this file.
MODELSHIP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# A file only a modelship checkout has: a workspace holding it builds everything
# from itself (repro.py builds clones of it with this same file).
MODELSHIP_MARKER = "modelship/private/image.bzl"
# A consumer's org.opencontainers.image.source, at the root of its workspace.
CONSUMER_SOURCE_URL_FILE = "source-url.txt"
UNSTAMPED_SHA = "0" * 40
# The committed org.opencontainers.image.source (never the clone's git remote).
SOURCE_URL_FILE = "tools/image/source-url.txt"


class BuildError(Exception):
    """A problem to show as it is, naming the input."""


# --- The image spec (written by model_image, modelship/private/image.bzl) -----

# 2: the release fields (release_gate, release_gate_library, operating_point,
# requests, task) were added, all but task required.
SPEC_VERSION = 2
# Label keys the build writes itself (labels_for); a spec may not set them.
RESERVED_LABEL_PREFIXES = labels_lib.RESERVED_PREFIXES
# Where the model file is in the image (the Dockerfile's COPY model/ and
# MODELSHIP_MODEL_PATH): /<MODEL_DIR>/<spec model.file>.
MODEL_DIR = "opt/modelship/model"
_IMAGE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_HANDLER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*\Z")
_FILE_FIELDS = ("model", "contract", "release", "operating_point", "requests",
                "stdlib_modules")
_OPTIONAL_FILES = ("contract", "stdlib_modules")
_RELEASE_FIELDS = ("release_gate", "release_gate_library", "operating_point", "requests")
_URL_PATH = re.compile(r"/[A-Za-z0-9._~/-]*\Z")
_LOCK_LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==")


@dataclasses.dataclass(frozen=True)
class SpecFile:
    """A file the spec names: `path` in its workspace (where the image's sources
    hold it), `runfile` for the runfiles library, `local` once resolved."""
    path: str
    runfile: str
    local: str = ""


@dataclasses.dataclass(frozen=True)
class Spec:  # pylint: disable=too-many-instance-attributes
    """Everything particular to one image, checked."""
    source: str
    declared_by: str
    image_name: str
    handler: str
    served_name: str
    service: str
    model: SpecFile
    model_file: str
    contract: SpecFile  # None when the service has no contract
    release: SpecFile
    size_budget_mb: int
    labels: dict
    sources: tuple
    # What `<name>.release` (tools/release) needs to validate a pushed image.
    release_gate: str = ""  # 'package.module:function' (the model release gate)
    release_gate_library: str = ""  # the py_library providing it (a label)
    operating_point: SpecFile = None  # bounds of latency and memory (JSON)
    requests: SpecFile = None  # sample request bodies (JSON)
    task: "TaskCheck" = None  # None when the service has no task endpoint to check
    locks: tuple = ()  # the workspace's own Python locks, after modelship's runtime.txt
    # The folders of the service's own files (their files ship, not their subfolders)
    # and the test folders the test stage runs (shipped whole). Empty packages: every
    # source folder (a spec written before model_image recorded them).
    packages: tuple = ()
    tests: tuple = ()
    stdlib_modules: SpecFile = None  # the stdlib modules' list; None: the default image's
    model_target: str = ""  # the model's Bazel target and the package URL of what it is
    model_source: str = ""  # converted from ('' when trained here): for the SBOM

    @property
    def model_in_image(self):
        """The model file's path in the image's file system (no leading '/')."""
        return f"{MODEL_DIR}/{self.model_file}"


@dataclasses.dataclass(frozen=True)
class TaskCheck:
    """The service's own (non-OIP) endpoint the release checks: POST `path` with the
    requests file's `task` body; the answer must match the JSON schema `schema`."""
    path: str
    schema: SpecFile


def _task(doc, errors):
    """The spec's optional `task` entry as a TaskCheck (None when absent or invalid)."""
    value = doc.get("task")
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"path", "schema"}:
        errors.append(f"field 'task' must be null or an object with 'path' (the endpoint, "
                      f"e.g. /v1/predict) and 'schema' (its response schema file), got "
                      f"{value!r}")
        return None
    path = value["path"]
    if not (isinstance(path, str) and _URL_PATH.match(path)):
        errors.append(f"field 'task': 'path' must be a URL path starting with '/', got "
                      f"{path!r}")
    schema = _spec_file(value, "schema", errors)
    if schema is None or not isinstance(path, str):
        return None
    return TaskCheck(path, schema)


def _spec_file(doc, field, errors, optional=False):
    """A {"path", "runfile"} entry of the spec as a SpecFile (None when invalid)."""
    value = doc.get(field)
    if value is None and optional:
        return None
    if (not isinstance(value, dict) or not all(isinstance(value.get(k), str) and value[k]
                                               for k in ("path", "runfile"))):
        errors.append(f"field {field!r} must be an object with non-empty 'path' and "
                      f"'runfile' strings, got {value!r}")
        return None
    parts = value["path"].split("/")
    if value["path"].startswith("/") or ".." in parts:
        errors.append(f"field {field!r}: 'path' must be relative to the workspace, without "
                      f"'..', got {value['path']!r}")
        return None
    return SpecFile(value["path"], value["runfile"])


def _check_release_gate(doc, errors):
    gate = doc.get("release_gate")
    if "release_gate" in doc and not (isinstance(gate, str) and _HANDLER.match(gate)):
        errors.append(f"field 'release_gate' must be the model release gate as "
                      f"'package.module:function', got {gate!r}")


def _spec_file_list(doc, field, errors):
    """An optional list of {"path", "runfile"} entries of the spec, as SpecFiles."""
    values = doc.get(field, [])
    if not isinstance(values, list):
        errors.append(f"field {field!r} must be a list, got {values!r}")
        return []
    return [_spec_file({field: entry}, field, errors) for entry in values]


def _folders(doc, field, errors):
    """An optional list of workspace folders (relative paths) of the spec, as a tuple."""
    value = doc.get(field, [])
    if not isinstance(value, list) or not all(
            isinstance(f, str) and f and not f.startswith("/") and ".." not in f.split("/")
            for f in value):
        errors.append(f"field {field!r} must be a list of folders of the workspace "
                      f"(relative paths), got {value!r}")
        return ()
    return tuple(value)


def parse_spec(doc, source="the spec"):
    """A Spec from the decoded JSON `doc`; BuildError listing every field that is
    wrong (each named, with what it must be)."""
    if not isinstance(doc, dict):
        raise BuildError(f"{source}: must be a JSON object, got {type(doc).__name__}")
    errors = []
    known = {"spec_version", "declared_by", "image_name", "handler", "served_name", "service",
             "model", "contract", "release", "size_budget_mb", "labels", "sources",
             "release_gate", "release_gate_library", "operating_point", "requests", "task",
             "locks", "packages", "tests", "stdlib_modules", "model_source"}
    for field in sorted(set(doc) - known):
        errors.append(f"field {field!r} is unknown (known: {', '.join(sorted(known))})")
    for field in sorted(known - set(doc) - {"contract", "labels", "sources", "declared_by",
                                            "task", "locks", "packages", "tests",
                                            "stdlib_modules", "model_source"}):
        hint = (" (a release field, new in spec_version 2: declare it in model_image, "
                "//modelship:defs.bzl)" if field in _RELEASE_FIELDS else "")
        errors.append(f"field {field!r} is missing{hint}")
    if "spec_version" in doc and doc["spec_version"] != SPEC_VERSION:
        errors.append(f"field 'spec_version' must be {SPEC_VERSION} (this build.py's), got "
                      f"{doc['spec_version']!r}: rebuild the spec with the same modelship")
    name = doc.get("image_name")
    if "image_name" in doc and not (isinstance(name, str) and _IMAGE_NAME.match(name)):
        errors.append(f"field 'image_name' must be a lower-case image name (letters, numbers, "
                      f"'.', '_', '-'), got {name!r}")
    handler = doc.get("handler")
    if "handler" in doc and not (isinstance(handler, str) and _HANDLER.match(handler)):
        errors.append(f"field 'handler' must be 'package.module:Class' (what MODELSHIP_HANDLER "
                      f"takes), got {handler!r}")
    _check_release_gate(doc, errors)
    for field in ("served_name", "service", "release_gate_library"):
        value = doc.get(field)
        if field in doc and not (isinstance(value, str) and value.strip() == value and value):
            errors.append(f"field {field!r} must be a non-empty string, got {value!r}")
    budget = doc.get("size_budget_mb")
    if "size_budget_mb" in doc and (isinstance(budget, bool) or not isinstance(budget, int)
                                    or budget <= 0):
        errors.append(f"field 'size_budget_mb' must be a positive whole number of MB, got "
                      f"{budget!r}")
    files = {field: _spec_file(doc, field, errors, optional=field in _OPTIONAL_FILES)
             for field in _FILE_FIELDS if field in doc or field in _OPTIONAL_FILES}
    model_file = (doc.get("model") or {}).get("file") if isinstance(doc.get("model"), dict) \
        else None
    if files.get("model") and not (isinstance(model_file, str) and model_file
                                   and "/" not in model_file and model_file not in (".", "..")):
        errors.append(f"field 'model' must have a 'file' (its file name in the image), got "
                      f"{model_file!r}")
    labels = doc.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in labels.items()):
        errors.append(f"field 'labels' must map strings to strings, got {labels!r}")
        labels = {}
    for key in sorted(labels):
        if key.startswith(RESERVED_LABEL_PREFIXES):
            errors.append(f"field 'labels': {key!r} is written by the build itself; use a key "
                          f"outside {', '.join(RESERVED_LABEL_PREFIXES)}")
    entries = _spec_file_list(doc, "sources", errors)
    lock_entries = _spec_file_list(doc, "locks", errors)
    task = _task(doc, errors)
    folders = {field: _folders(doc, field, errors) for field in ("packages", "tests")}
    if errors:
        raise BuildError(f"{source} is not a valid image spec:\n  " + "\n  ".join(errors))
    return Spec(source=source, declared_by=doc.get("declared_by", ""), image_name=name,
                handler=handler, served_name=doc["served_name"], service=doc["service"],
                model=files["model"], model_file=model_file, contract=files["contract"],
                release=files["release"], size_budget_mb=budget, labels=dict(labels),
                sources=tuple(entries), release_gate=doc["release_gate"],
                release_gate_library=doc["release_gate_library"],
                operating_point=files["operating_point"], requests=files["requests"],
                task=task, locks=tuple(lock_entries), packages=folders["packages"],
                tests=folders["tests"],
                stdlib_modules=files["stdlib_modules"],
                model_target=str(doc["model"].get("label", "")),
                model_source=str(doc.get("model_source") or ""))


def read_spec(path):
    """The checked Spec in the file at `path`."""
    try:
        with open(path, encoding="utf-8") as text:
            doc = json.load(text)
    except FileNotFoundError as err:
        raise BuildError(f"no image spec at {path}: build it with `bazel build "
                         f"//<pkg>:<name>.spec` (model_image), or run `bazel run "
                         f"//<pkg>:<name>`") from err
    except ValueError as err:
        raise BuildError(f"{path} is not JSON ({err})") from err
    return parse_spec(doc, path)


def spec_path(args):
    """The spec file the command line names: --spec is the caller's path
    (tools/cli.py); --spec-runfile is relative to where Bazel starts the program
    (its runfiles tree, what `$(rootpath)` gives), else a runfiles-library path.
    Call it before changing directory."""
    if args.spec:
        return cli.user_path(args.spec)
    if os.path.exists(args.spec_runfile):
        return os.path.abspath(args.spec_runfile)
    return runfile(args.spec_runfile, "--spec-runfile")


def runfile(rlocation, field):
    """Absolute path of a runfile the spec names; BuildError naming the field."""
    hint = ("run the image's own target (`bazel run //<pkg>:<name>`, which has every "
            "file of its spec in its runfiles)")
    try:
        from runfiles import Runfiles  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        raise BuildError(f"spec field {field!r}: {rlocation}: no runfiles library here "
                         f"({err}); {hint}") from None
    resolver = Runfiles.Create()
    found = resolver.Rlocation(rlocation) if resolver is not None else None
    if not found or not os.path.exists(found):
        raise BuildError(f"spec field {field!r}: {rlocation} is not in this program's "
                         f"runfiles; {hint}")
    return found


def resolve_spec(spec):
    """The Spec with every file the image build reads found in the runfiles."""
    def local(entry, field):
        if entry is None:
            return None
        return dataclasses.replace(entry, local=runfile(entry.runfile, field))
    # The release fields (operating_point, requests, task): tools/release/imagespec.py's.
    return dataclasses.replace(
        spec, model=local(spec.model, "model"), contract=local(spec.contract, "contract"),
        release=local(spec.release, "release"),
        stdlib_modules=local(spec.stdlib_modules, "stdlib_modules"),
        sources=tuple(local(entry, "sources") for entry in spec.sources),
        locks=tuple(local(entry, "locks") for entry in spec.locks))


# Progress on stderr, so stdout stays the report; main() points its logs at --out.
REPORTER = progress.Reporter("image")


def log(message):
    """One progress line."""
    REPORTER.say(message)


def run_step(argv, step, log_name, parse=None, **popen):
    """A long command: its output into <out>/logs/<log_name>.log, progress and
    heartbeats on stderr; BuildError naming the step and the log on failure."""
    try:
        return REPORTER.run(argv, step, log_name, parse=parse, **popen)
    except progress.StepFailed as err:
        raise BuildError(str(err)) from err


def run(argv, **kwargs):
    """Runs a command; raises BuildError with its output tail on failure."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise BuildError(f"{' '.join(argv[:3])} ... failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def git(workspace, *args):
    """Output of a git command in the workspace."""
    return run(["git", "-C", workspace] + list(args)).strip()


def stamp(workspace, stamped):
    """(revision, commit epoch, dirty) of the tree, or constants when unstamped."""
    if not stamped:
        return UNSTAMPED_SHA, 0, False
    try:
        sha = git(workspace, "rev-parse", "HEAD")
        epoch = int(git(workspace, "log", "-1", "--format=%ct"))
        # CI sets SOURCE_DATE_EPOCH (the commit time, templates/image-build.yml);
        # the reproducible-builds convention is that it wins when set.
        if os.environ.get("SOURCE_DATE_EPOCH"):
            epoch = int(os.environ["SOURCE_DATE_EPOCH"])
        dirty = bool(git(workspace, "status", "--porcelain", "--untracked-files=no"))
    except ValueError as err:
        raise BuildError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got "
                         f"{os.environ.get('SOURCE_DATE_EPOCH')!r}") from err
    except BuildError as err:
        raise BuildError(f"cannot read the git revision ({err}); build with --unstamped") \
            from err
    return sha, epoch, dirty


def strip_credentials(url):
    """The URL without user:password@ (what a clone's remote or CI may carry)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _comparable(url):
    """A URL reduced to what names the project: no credentials, scheme and host in
    lower case, no trailing slash or .git."""
    parts = urllib.parse.urlsplit(strip_credentials(url.strip()))
    path = parts.path.rstrip("/")
    path = path[:-4] if path.endswith(".git") else path
    return (parts.scheme.lower(), parts.netloc.lower(), path)


def source_url(workspace, claimed="", name=SOURCE_URL_FILE):
    """org.opencontainers.image.source: the committed `name` (SOURCE_URL_FILE in
    modelship, CONSUMER_SOURCE_URL_FILE in a workspace that loads its rules), checked.

    `claimed` is what the environment says the project is (CI's CI_PROJECT_URL);
    it only confirms: when it names another project a warning says so and the
    label keeps the committed URL, so the same commit gives the same digest in a
    fork or a mirror too."""
    path = os.path.join(workspace, name)
    try:
        with open(path, encoding="utf-8") as text:
            lines = [line.strip() for line in text
                     if line.strip() and not line.lstrip().startswith("#")]
    except FileNotFoundError as err:
        raise BuildError(f"{name} is missing: commit it with the project's "
                         f"https URL on one line (the image's source label)") from err
    if len(lines) != 1:
        raise BuildError(f"{name} must hold one URL line, found {len(lines)}")
    parts = urllib.parse.urlsplit(lines[0])
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BuildError(f"{name}: the source URL must be an https:// URL of the "
                         f"project, got {strip_credentials(lines[0])!r}")
    url = strip_credentials(lines[0])
    if url != lines[0]:
        log(f"warning: {name} holds credentials (user:password@); they are left "
            f"out of the label. Remove them from the file, and revoke the token")
    if claimed and _comparable(claimed) != _comparable(url):
        log(f"warning: CI says the project is {strip_credentials(claimed)}, {name} "
            f"says {url}; the label keeps {url} (the same commit gives the same digest "
            f"anywhere). If the project has moved, commit the new URL in {name}")
    return url


def cache_dir():
    """The folder that keeps downloaded, verified inputs between builds."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "modelship")


@contextlib.contextmanager
def cache_lock():
    """Holds the cache's lock: builds running at once (CI jobs, the end-to-end
    tests) take turns to fill it, so none reads a file another is writing."""
    os.makedirs(cache_dir(), exist_ok=True)
    with open(os.path.join(cache_dir(), ".lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare_rootfs(workspace, ctx, epoch):
    """Fetches the pinned .debs and assembles base.tar and dev.tar (`workspace`:
    modelship's, whose Debian locks and tools these are)."""
    debs = os.path.join(cache_dir(), "debs")
    debian = os.path.join(workspace, "third_party", "debian")
    locks = [os.path.join(debian, name) for name in ("base.lock", "dev.lock")]
    tools = os.path.join(workspace, "tools")
    with cache_lock():
        run_step([sys.executable, os.path.join(tools, "debian", "fetch.py"), "--cache", debs]
                 + locks, "fetching and checking .deb files", "debs")
    os.makedirs(os.path.join(ctx, "rootfs"))
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    rootfs = [sys.executable, os.path.join(tools, "image", "rootfs.py"), "--debs", debs,
              "--link", "usr/bin/python3=python3.11"]
    base_tar = os.path.join(ctx, "rootfs", "base.tar")
    run_step(rootfs + ["--lock", locks[0], "--prune", os.path.join(debian, "base.prune"),
                       "--out", base_tar], "assembling the base root filesystem",
             "rootfs-base", env=env)
    # dev: the whole dev closure with a lighter prune (the test tools need parts of
    # the standard library that production leaves out, e.g. sqlite3), minus base.
    run_step(rootfs + ["--lock", locks[1], "--prune", os.path.join(debian, "dev.prune"),
                       "--skip-tar", base_tar, "--out", os.path.join(ctx, "rootfs", "dev.tar")],
             "assembling the dev root filesystem", "rootfs-dev", env=env)


def prepare_wheels(workspace, ctx, extra_locks=()):
    """Downloads (or reuses) every wheel of the locks, hash-checked by pip.

    `workspace` is modelship's (its locks under third_party/python);
    `extra_locks` (the spec's `locks`, SpecFile) are the image's own additions
    to the runtime lock: the image's runtime.txt is modelship's followed by
    them (merge_locks)."""
    with cache_lock():
        _prepare_wheels(workspace, ctx, extra_locks)


def _prepare_wheels(workspace, ctx, extra_locks):
    """prepare_wheels, holding the cache's lock."""
    wheels = os.path.join(cache_dir(), "wheels")
    os.makedirs(wheels, exist_ok=True)
    os.makedirs(os.path.join(ctx, "locks"))
    os.makedirs(os.path.join(ctx, "wheels"))
    sources = [(name + ".txt", os.path.join(workspace, "third_party", "python", name + ".txt"))
               for name in LOCKS] + [(entry.path, entry.local) for entry in extra_locks]
    for name in LOCKS:
        shutil.copy(os.path.join(workspace, "third_party", "python", name + ".txt"),
                    os.path.join(ctx, "locks", name + ".txt"))
    if extra_locks:
        merge_locks(os.path.join(ctx, "locks", "runtime.txt"), extra_locks)
    for label, lock in sources:
        if all_cached(lock, wheels):
            log(f"wheels of {label}: all in the cache, hashes checked")
            continue
        run_step([sys.executable, "-m", "pip", "download", "--quiet",
                  "--disable-pip-version-check", "--require-hashes", "--no-deps",
                  "--only-binary=:all:", "--dest", wheels, "-r", lock],
                 f"downloading wheels of {label} (pip checks every hash)",
                 "wheels-" + re.sub(r"[^A-Za-z0-9_.-]", "_", label))
    needed = set()
    for name in LOCKS:
        needed |= wheel_names(os.path.join(ctx, "locks", name + ".txt"), wheels)
    for name in sorted(needed):
        place(os.path.join(wheels, name), os.path.join(ctx, "wheels", name))
    pip = [n for n in needed if n.startswith("pip-")]
    if len(pip) != 1:
        raise BuildError("the imagedev lock must pin exactly one pip wheel (third_party/python/"
                         "imagedev.in lists pip); found " + (", ".join(pip) or "none"))
    place(os.path.join(wheels, pip[0]), os.path.join(ctx, "wheels", "pip.whl"))


def lock_packages(lock):
    """{normalized package name: requirement line} of a pip-tools lock."""
    found = {}
    for line in lock_hashes(lock):
        match = _LOCK_LINE.match(line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = line
    return found


def merge_locks(image_lock, extra_locks):
    """Appends the image's own locks to its copy of modelship's runtime lock.

    Each must pin only what modelship's runtime lock does not (pip refuses a
    package pinned twice, even at one version): a BuildError names the package
    and the fix otherwise."""
    pinned = lock_packages(image_lock)
    parts = []
    for entry in extra_locks:
        for name, line in sorted(lock_packages(entry.local).items()):
            if name in pinned:
                raise BuildError(
                    f"spec field 'locks': {entry.path} pins {line}, which modelship's runtime "
                    f"lock already pins ({pinned[name]}); remove it from {entry.path} "
                    f"(compile it with modelship's third_party/python/runtime.txt as a "
                    f"constraint, `pip-compile -c runtime.txt`, so it only holds what your "
                    f"model adds)")
            pinned[name] = line
        with open(entry.local, encoding="utf-8") as text:
            parts.append(f"\n# --- {entry.path} (the image's own lock) ---\n" + text.read())
    with open(image_lock, "a", encoding="utf-8") as out:
        out.write("".join(parts))


def place(src, dest):
    """Hard-links a cached input into the context (copies across file systems)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def lock_hashes(lock):
    """{requirement line: set of allowed sha256} of a pip-tools lock."""
    with open(lock, encoding="utf-8") as text:
        joined = text.read().replace("\\\n", " ")
    entries = {}
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            entries[line.split()[0]] = set(part.split(":", 1)[1] for part in line.split()
                                           if part.startswith("--hash=sha256:"))
    return entries


def all_cached(lock, folder):
    """True when the cache holds, for every entry of the lock, a wheel with a pinned
    hash (then no download, and no network, is needed)."""
    cached = set(sha256_file(os.path.join(folder, name)) for name in os.listdir(folder)
                 if name.endswith(".whl"))
    return all(hashes & cached for hashes in lock_hashes(lock).values())


def wheel_names(lock, folder):
    """File names in `folder` of the wheels a lock pins (matched by hash)."""
    with open(lock, encoding="utf-8") as text:
        hashes = set(part.split(":", 1)[1] for part in text.read().split()
                     if part.startswith("--hash=sha256:"))
    found = set()
    for name in os.listdir(folder):
        if name.endswith(".whl") and sha256_file(os.path.join(folder, name)) in hashes:
            found.add(name)
    return found


def sha256_file(path, _memo={}):  # pylint: disable=dangerous-default-value
    """Hex sha256 of a file (memoized by path, size and mtime)."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _memo:
        digest = hashlib.sha256()
        with open(path, "rb") as data:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                digest.update(chunk)
        _memo[key] = digest.hexdigest()
    return _memo[key]


def framework_root(workspace):
    """Where modelship's own files are: the workspace itself when it is modelship
    (a checkout, or a clone repro.py builds), else the modelship this file is from."""
    if os.path.isfile(os.path.join(workspace, MODELSHIP_MARKER)):
        return workspace
    return MODELSHIP


def tracked_files(root, paths):
    """The files under `paths` of `root`: git's tracked and untracked, not ignored ones in
    a git work tree; every file in a release (an archive of tracked files)."""
    inside = subprocess.run(["git", "-C", root, "rev-parse", "--is-inside-work-tree"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            check=False).stdout.strip() == "true"
    if inside:
        return sorted(filter(None, git(root, "ls-files", "-z", "--cached", "--others",
                                       "--exclude-standard", "--", *paths).split("\0")))
    found = []
    for path in paths:
        if os.path.isfile(os.path.join(root, path)):
            found.append(path)
        for folder, dirs, files in os.walk(os.path.join(root, path)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            found += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    return sorted(found)


def shipped(rel, packages, tests):
    """Whether the source file `rel` goes into an image whose service's own files are in
    the folders `packages` and whose test stage runs the folders `tests`: the files of
    those packages (not of their subfolders), the test folders whole, and what the
    image's own steps run (tools/image, SOURCE_FILES). No packages: every file."""
    if not packages or rel in SOURCE_FILES or rel.startswith("tools/image/"):
        return True
    return rel.rpartition("/")[0] in packages or any(rel.startswith(t + "/") for t in tests)


def source_files(workspace, spec=None):
    """[(absolute path, path in the image's sources)] of the tracked sources the image
    needs. In modelship itself, SOURCE_DIRS and SOURCE_FILES of the workspace; in
    another workspace, its own OWN_DIRS, and modelship's runtime (FRAMEWORK_DIRS,
    SOURCE_FILES) without modelship's tests, which test modelship's own models
    (modelship's image runs them). Of those, only what `spec` ships (`shipped`):
    the packages of its service and its test folders."""
    packages, tests = (spec.packages, spec.tests) if spec is not None else ((), ())
    framework = framework_root(workspace)
    if framework == workspace:
        return [(os.path.join(workspace, rel), rel)
                for rel in tracked_files(workspace, SOURCE_DIRS + SOURCE_FILES)
                if shipped(rel, packages, tests)]
    own = [(os.path.join(workspace, rel), rel) for rel in tracked_files(workspace, OWN_DIRS)
           if shipped(rel, packages, tests)]
    theirs = [(os.path.join(framework, rel), rel)
              for rel in tracked_files(framework, FRAMEWORK_DIRS + SOURCE_FILES)
              if "tests" not in rel.split("/") and shipped(rel, packages, tests)]
    return sorted(own + theirs, key=lambda pair: pair[1])


def prepare_sources(workspace, ctx, spec, model):
    """Copies the model, the tracked sources the image needs (source_files) and the
    built ones the spec lists (`sources`).

    The model also goes where it is in the workspace (spec: model.path), where
    the image's test stage finds built files."""
    os.makedirs(os.path.join(ctx, "model"))
    shutil.copy(model, os.path.join(ctx, "model", spec.model_file))
    for src, rel in source_files(workspace, spec):
        if not os.path.isfile(src):
            continue
        dest = os.path.join(ctx, "src", rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
    built = [(model, spec.model.path)] + [(entry.local, entry.path) for entry in spec.sources]
    built += [(entry.local, entry.path) for entry in (spec.stdlib_modules,) if entry]
    for src, rel in built:
        dest = os.path.join(ctx, "src", rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
    shutil.copy(os.path.join(framework_root(workspace), "Dockerfile"),
                os.path.join(ctx, "Dockerfile"))
    normalize_modes(ctx)


def normalize_modes(ctx):
    """0755 for folders and executables, 0644 for the rest: the umask must not leak
    into the image (COPY keeps the modes of the context)."""
    for folder, dirs, files in os.walk(ctx):
        os.chmod(folder, 0o755)
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path) or os.path.isdir(path):
                continue
            executable = os.stat(path).st_mode & 0o100
            os.chmod(path, 0o755 if executable else 0o644)


def model_labels(spec, model):
    """Labels describing the model (read from the artifact and the spec's release
    record) and the API contract (the spec's)."""
    from inference import artifact  # pylint: disable=import-outside-toplevel
    loaded = artifact.read(model)
    header = loaded.header
    try:
        with open(spec.release.local, encoding="utf-8") as text:
            release = json.load(text)
        headline = release["headline_metric"]
    except (ValueError, KeyError, TypeError) as err:
        raise BuildError(f"spec field 'release': {spec.release.path} must be JSON with a "
                         f"'headline_metric' ({err!r})") from err
    metric = labels_lib.headline_value(header, release, loaded.version)
    if metric is None:
        raise BuildError(
            f"spec field 'release': the headline metric {headline!r} of {spec.release.path} "
            f"is neither in the model artifact's header 'metrics' nor measured on this "
            f"model in the release record (its 'version' {release.get('version')!r} is "
            f"not the model's {loaded.version}). Record the metric in the artifact at "
            f"conversion, or run the model's release gate and promote the model.")
    output_schema = labels_lib.output_schema_version(header)
    if output_schema is None:
        raise BuildError(f"spec field 'model': {spec.model.path} declares no output schema "
                         f"version ('output.schema_version' or 'schema_version' in its "
                         f"header)")
    labels = {
        labels_lib.MODEL_NAME: header["model"]["name"],
        labels_lib.MODEL_VERSION: loaded.version,
        labels_lib.MODEL_METRIC: f"{headline}={metric}",
        labels_lib.MODEL_FORMAT_VERSION: str(artifact.FORMAT_VERSION),
        labels_lib.MODEL_OUTPUT_SCHEMA_VERSION: str(output_schema),
        labels_lib.SERVED_NAME: spec.served_name,
    }
    if spec.contract:
        with open(spec.contract.local, encoding="utf-8") as text:
            labels[labels_lib.API_VERSION] = json.load(text)["info"]["version"]
    return labels


def labels_for(spec, stamped, model, source):
    """The OCI and project labels of every stage: the build's, then the spec's own."""
    sha, epoch, dirty = stamped
    labels = {
        labels_lib.TITLE: spec.image_name,
        labels_lib.REVISION: sha,
        labels_lib.CREATED: _rfc3339(epoch),
        labels_lib.VERSION: sha[:12] + ("-dirty" if dirty else ""),
        labels_lib.SOURCE: source,
        labels_lib.BASE_NAME: "debian:bookworm (from third_party/debian/base.lock)",
    }
    labels.update(model_labels(spec, model))
    # Declared keys only, each of its declared type (tools/image/labels.py).
    problems = labels_lib.undeclared(labels) + labels_lib.type_problems(labels)
    if problems:
        raise BuildError("the image's labels are wrong: " + "; ".join(problems))
    labels.update(spec.labels)
    return labels


def build_args(spec):
    """The Dockerfile's ARGs: what differs between images (the Dockerfile names no
    model)."""
    args = {"MODEL_FILE": spec.model_file, "MODELSHIP_HANDLER": spec.handler}
    if spec.tests:
        args["MODELSHIP_IMAGE_TESTS"] = " ".join(spec.tests)
    if spec.stdlib_modules:
        args["MODELSHIP_STDLIB_MODULES"] = spec.stdlib_modules.path
    return args


def _rfc3339(epoch):
    """RFC 3339 UTC time of an epoch, without the wall clock."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def buildah(storage):
    """The buildah command, with its own storage folders when asked, in a mount
    namespace of its own (runtime.private_mounts says why)."""
    if not storage:
        return runtime.private_mounts(["buildah"])
    return runtime.private_mounts(["buildah", "--root", os.path.join(storage, "root"),
                                   "--runroot", os.path.join(storage, "run")])


def buildah_build(ctx, target, epoch, labels, no_cache, tag, storage=None, args=None):
    """One `buildah build` of a stage, with no network; returns the image id."""
    argv = buildah(storage) + [
        "build", "--network", "none", "--timestamp", str(epoch), "--target", target,
        "--tag", tag, "--layers", "--format", "oci", "--file", os.path.join(ctx, "Dockerfile")]
    if no_cache:
        argv.append("--no-cache")
    for key, value in sorted((args or {}).items()):
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    run_step(argv + [ctx], f"buildah build --target {target}", f"stage-{target}",
             parse=progress.BuildahSteps())
    return run(buildah(storage) + ["images", "--quiet", "--no-trunc", tag]).split()[0]


def export(tag, out_dir, image_name, storage=None):
    """Writes the image as an OCI archive; returns its report dict."""
    os.makedirs(out_dir, exist_ok=True)
    archive = os.path.join(out_dir, image_name + ".oci.tar")
    if os.path.exists(archive):
        os.remove(archive)
    run_step(buildah(storage) + ["push", "--quiet", "--disable-compression", tag,
                                 f"oci-archive:{archive}:latest"],
             f"writing {os.path.relpath(archive)}", "export")
    inspect = json.loads(run(["skopeo", "inspect", f"oci-archive:{archive}"]))
    raw = json.loads(run(["skopeo", "inspect", "--raw", f"oci-archive:{archive}"]))
    config = json.loads(run(["skopeo", "inspect", "--config", f"oci-archive:{archive}"]))
    manifest_bytes = run(["skopeo", "inspect", "--raw", f"oci-archive:{archive}"]).encode()
    sizes = uncompressed_sizes(archive)
    report = {
        "archive": os.path.relpath(archive),
        "digest": "sha256:" + hashlib.sha256(manifest_bytes.rstrip(b"\n")).hexdigest(),
        "config_digest": raw["config"]["digest"],
        "layers": [{"digest": layer["digest"], "size": layer["size"],
                    "uncompressed_size": sizes[layer["digest"]]} for layer in raw["layers"]],
        "history": [h.get("created_by", "") for h in config.get("history", [])
                    if not h.get("empty_layer")],
        "labels": inspect.get("Labels", {}),
        "size": sum(layer["size"] for layer in raw["layers"]),
        "uncompressed_size": sum(sizes[layer["digest"]] for layer in raw["layers"]),
    }
    report["digest"] = inspect.get("Digest", report["digest"])
    return report


def uncompressed_sizes(archive):
    """{layer digest: bytes of the layer tar once decompressed} of an OCI archive."""
    sizes = {}
    with tarfile.open(archive) as outer:
        for member in outer:
            if not member.name.startswith("blobs/sha256/") or not member.isfile():
                continue
            digest = "sha256:" + member.name.rsplit("/", 1)[1]
            with outer.extractfile(member) as blob:
                head = blob.read(2)
                blob.seek(0)
                stream = gzip.GzipFile(fileobj=blob) if head == b"\x1f\x8b" else blob
                total = 0
                for chunk in iter(lambda s=stream: s.read(1 << 20), b""):
                    total += len(chunk)
            sizes[digest] = total
    return sizes


def check_budget(report, spec):
    """BuildError when the production image weighs more than the spec allows."""
    budget = spec.size_budget_mb * 1_000_000
    if report["uncompressed_size"] > budget:
        layers = ", ".join(f"{layer['uncompressed_size'] / 1e6:.1f} MB" for layer in
                           report["layers"])
        raise BuildError(f"{report['archive']}: {report['uncompressed_size'] / 1e6:.1f} MB "
                         f"uncompressed, over the size budget of {spec.size_budget_mb} MB "
                         f"(spec field 'size_budget_mb', from {spec.declared_by or spec.source})"
                         f"; layers: {layers}")


def print_report(report):
    """Human-readable summary on stdout."""
    print(f"image: {report['archive']}")
    print(f"digest: {report['digest']}")
    print(f"config: {report['config_digest']}")
    print(f"size: {report['uncompressed_size'] / 1e6:.1f} MB uncompressed, "
          f"{report['size'] / 1e6:.1f} MB compressed")
    print("layers (uncompressed, compressed, digest, step):")
    for layer, step in zip(report["layers"], report["history"]):
        print(f"  {layer['uncompressed_size'] / 1e6:7.2f} MB {layer['size'] / 1e6:7.2f} MB  "
              f"{layer['digest'][:19]}  {step[-60:]}")
    for key, value in sorted(report["labels"].items()):
        print(f"label {key}={value}")


def make_parser(**kwargs):
    """The command line of build.py (repro.py passes options on to it)."""
    kwargs.setdefault("description", __doc__)
    parser = argparse.ArgumentParser(formatter_class=argparse.RawDescriptionHelpFormatter,
                                     **kwargs)
    spec = parser.add_mutually_exclusive_group(required=True)
    spec.add_argument("--spec", help="the image spec (JSON, written by model_image as "
                                     "<name>.spec); `bazel run //<pkg>:<name>` passes it")
    spec.add_argument("--spec-runfile", help="the image spec as a path in this program's "
                                             "runfiles (what the generated target passes)")
    parser.add_argument("--target", action="append",
                        choices=["base", "dev", "lint", "test", "production"],
                        help="stages to build (default: lint, test, production)")
    parser.add_argument("--out", help="where the OCI archive goes (default: dist/ of the "
                                      "workspace)")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    parser.add_argument("--unstamped", action="store_true",
                        help="constant revision and time, for cache-friendly local builds")
    parser.add_argument("--context", help="keep the build context in this folder")
    parser.add_argument("--storage", help="buildah storage folder (default: the system's)")
    parser.add_argument("--model", help="ship this model artifact instead of the one the "
                                        "spec names (a model-only release)")
    parser.add_argument("--source-url", default=os.environ.get("CI_PROJECT_URL", ""),
                        help="the project URL CI reports (default: $CI_PROJECT_URL); it "
                             "only confirms " + SOURCE_URL_FILE + ", which the "
                             "org.opencontainers.image.source label always comes from")
    return parser


def main(argv=None):
    """Entry point of `bazel run //:image`."""
    args = make_parser().parse_args(argv)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    try:
        spec = resolve_spec(read_spec(spec_path(args)))  # before leaving the runfiles
    except BuildError as err:
        print(f"image: {err}", file=sys.stderr)
        return 1
    # Paths given are the caller's (tools/cli.py); the default dist/ is the workspace's.
    for name in ("context", "storage", "model"):
        setattr(args, name, cli.user_path(getattr(args, name)))
    args.out = cli.user_path(args.out) if args.out else os.path.join(workspace, "dist")
    os.chdir(workspace)
    global REPORTER  # pylint: disable=global-statement
    REPORTER = progress.Reporter("image", log_dir=os.path.join(args.out, "logs"))
    targets = args.target or ["lint", "test", "production"]
    try:
        sha, epoch, dirty = stamp(workspace, not args.unstamped)
        framework = framework_root(workspace)
        source = source_url(workspace, args.source_url,
                            SOURCE_URL_FILE if framework == workspace
                            else CONSUMER_SOURCE_URL_FILE)
        model = args.model or spec.model.local
        ctx = args.context or tempfile.mkdtemp(prefix="modelship-ctx-")
        if os.path.exists(ctx) and os.listdir(ctx):
            shutil.rmtree(ctx)
        os.makedirs(ctx, exist_ok=True)
        prepare_rootfs(framework, ctx, epoch)
        prepare_wheels(framework, ctx, spec.locks)
        prepare_sources(workspace, ctx, spec, model)
        sbom_inputs.prepare(ctx, framework=framework, workspace=workspace, spec=spec, model=model,
                            debs=os.path.join(cache_dir(), "debs"), stamped=(sha, epoch, source))
        labels = labels_for(spec, (sha, epoch, dirty), model, source)
        for target in targets:
            # No cached layer for production: buildah's cache ignores --timestamp, --label.
            buildah_build(ctx, target, epoch, labels, args.no_cache or target == "production",
                          f"localhost/{spec.image_name}:{target}", args.storage,
                          build_args(spec))
        if "production" in targets:
            report = export(f"localhost/{spec.image_name}:production", args.out,
                            spec.image_name, args.storage)
            report.update(started=REPORTER.wall_started, finished=time.time(),  # provenance
                          invocation=os.environ.get("CI_JOB_URL") or None)
            with open(os.path.join(args.out, spec.image_name + ".json"), "w",
                      encoding="utf-8") as out:
                json.dump(report, out, indent=2, sort_keys=True)
            print_report(report)
            check_budget(report, spec)
        log(f"done in {progress.duration(time.monotonic() - REPORTER.started)}")
        if not args.context:
            shutil.rmtree(ctx)
    except (OSError, BuildError, sbom_inputs.TrustError) as err:  # OSError: not run by Bazel
        print(f"image: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
