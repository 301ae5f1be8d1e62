"""The release history: append-only JSON lines, kept in the registry itself.

It lives at `<repository>:release-history`, a one-layer OCI image whose layer
is a tar holding `history.jsonl`, so any machine that can pull the repository
reads the same history. Each event reads the current history, appends one
record and pushes the result; a local copy is appended to
MODELSHIP_RELEASE_HISTORY_FILE when that is set.
"""

import datetime
import getpass
import io
import json
import os
import socket
import tarfile

from tools.release import errors
from tools.release import registry as registry_lib
from tools.release.image import DIGEST

TAG = "release-history"
FILE = "history.jsonl"
EVENTS = ("publish", "validate", "promote", "rollback")
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def who(environ=None):
    """The CI user when in a pipeline, else user@host."""
    environ = os.environ if environ is None else environ
    for name in ("GITLAB_USER_LOGIN", "GITHUB_ACTOR"):
        if environ.get(name):
            return environ[name]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def now():
    """UTC time, RFC 3339, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(event, digest, reference, labels, **fields):
    """One history record."""
    assert event in EVENTS, event
    entry = {
        "event": event,
        "digest": digest,
        "reference": reference,
        "git_sha": labels.get("org.opencontainers.image.revision"),
        "model_version": labels.get("io.modelship.model.version"),
        "api_version": labels.get("io.modelship.api.version"),
        "metrics": {},
        "who": who(),
        "when": now(),
    }
    entry.update(fields)
    return entry


def _tar(data):
    """A deterministic tar holding history.jsonl."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(FILE)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _problem(entry):
    """What makes a parsed line no history record (None when it is one)."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("event") not in EVENTS:
        return f"event {entry.get('event')!r} is not one of {', '.join(EVENTS)}"
    if not isinstance(entry.get("digest"), str) or not DIGEST.fullmatch(entry["digest"]):
        return f"digest {entry.get('digest')!r} is not sha256:<64 hex>"
    for key in ("reference", "when"):
        if not isinstance(entry.get(key), str):
            return f"{key} {entry.get(key)!r} is not a string"
    previous = entry.get("previous_digest")
    if previous is not None and (not isinstance(previous, str)
                                 or not DIGEST.fullmatch(previous)):
        return f"previous_digest {previous!r} is not sha256:<64 hex>"
    if entry.get("tag") is not None and not isinstance(entry["tag"], str):
        return f"tag {entry['tag']!r} is not a string"
    return None


def parse(text):
    """Records of JSON-lines text, one per line; raises ValueError naming the first line
    that is not a record (a blank line included: line numbers are what messages cite)."""
    records, lines = [], text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last record
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
            problem = "not JSON"
        else:
            problem = _problem(entry)
        if problem:
            raise ValueError(f"line {number} ({line[:80]!r}): {problem}")
        records.append(entry)
    return records


def describe(records, entry):
    """How messages name a record: its line in the history, time, event and digest."""
    line = next(i for i, r in enumerate(records, 1) if r is entry)
    return (f"release history line {line} ({entry.get('when')}, {entry.get('event')} "
            f"{entry.get('digest')})")


class Store:
    """The history of one repository in its registry."""

    def __init__(self, client, local_file=None):
        self.client = client
        self.local_file = local_file

    def read(self):
        """Every record, oldest first ([] when there is no history yet)."""
        try:
            _, _, manifest = self.client.manifest(TAG)
        except errors.NotFoundError:
            return []
        layer = self.client.blob(manifest["layers"][0]["digest"])
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            member = tar.extractfile(FILE)
            if member is None:
                raise errors.RegistryError(f"{self.client.name}: {TAG} holds no {FILE}")
            text = member.read().decode()
        try:
            return parse(text)
        except ValueError as err:
            raise errors.RefusedError(
                f"the release history {self.client.settings.base}:{TAG} is damaged: {err}; "
                f"nothing was done. Restore the tag from a good copy (e.g. "
                f"MODELSHIP_RELEASE_HISTORY_FILE) before releasing again") from err

    def append(self, entry):
        """Appends one record (read, append, push) and to the local file if set."""
        records = self.read() + [entry]
        self.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        if self.local_file:
            with open(self.local_file, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry

    def write(self, text):
        """Pushes `text` as the whole history (append is the one writer of the tool)."""
        layer = _tar(text.encode())
        diff_id = registry_lib.sha256_digest(layer)
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"io.modelship.release-history": "1"}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }, sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "size": len(config),
                       "digest": self.client.push_blob(config)},
            "layers": [{"mediaType": LAYER_TYPE, "size": len(layer),
                        "digest": self.client.push_blob(layer)}],
        }, sort_keys=True).encode()
        self.client.put_manifest(TAG, MANIFEST_TYPE, manifest)


def validated(records, digest):
    """The latest validate record of `digest`, if it passed (else None)."""
    for entry in reversed(records):
        if entry["event"] == "validate" and entry["digest"] == digest:
            return entry if entry.get("result") == "passed" else None
    return None


def released_records(records, tag):
    """The stack of promote/rollback records of `tag` that are current, rollbacks popped,
    oldest first; plus the first promote of the tag (its previous_digest is what the tag
    held before), or None."""
    stack, first = [], None
    for entry in records:
        if entry.get("tag") != tag:
            continue
        if entry["event"] == "promote":
            first = first or entry
            if not stack or stack[-1]["digest"] != entry["digest"]:
                stack.append(entry)
        elif entry["event"] == "rollback" and stack:
            stack.pop()
            if not stack or stack[-1]["digest"] != entry["digest"]:
                stack.append(entry)
    return stack, first


def released(records, tag):
    """The stack of digests `tag` was promoted to, rollbacks popped, oldest first; plus
    what the tag held before its first promote (or None)."""
    stack, before = [], None
    for entry in records:
        if entry.get("tag") != tag:
            continue
        if entry["event"] == "promote":
            if not stack and before is None:
                before = entry.get("previous_digest")
            if not stack or stack[-1] != entry["digest"]:
                stack.append(entry["digest"])
        elif entry["event"] == "rollback" and stack:
            stack.pop()
            if not stack or stack[-1] != entry["digest"]:
                stack.append(entry["digest"])
    return stack, before
