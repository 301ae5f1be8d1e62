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


def parse(text):
    """Records of JSON-lines text."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


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
            raise errors.RegistryError(f"{self.client.name}: the release history ({TAG}) is "
                                       f"not JSON lines: {err}") from err

    def append(self, entry):
        """Appends one record (read, append, push) and to the local file if set."""
        records = self.read() + [entry]
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
        layer = _tar(text)
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
        if self.local_file:
            with open(self.local_file, "a", encoding="utf-8") as out:
                out.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry


def validated(records, digest):
    """The latest validate record of `digest`, if it passed (else None)."""
    for entry in reversed(records):
        if entry["event"] == "validate" and entry["digest"] == digest:
            return entry if entry.get("result") == "passed" else None
    return None


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
