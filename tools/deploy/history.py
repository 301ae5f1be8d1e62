"""The previous stable digest, from the release history (`//tools/release -- history --json`)."""

import json

from tools.deploy import images
from tools.deploy.errors import InputError


def read(path):
    """The records of a JSON-lines history file, oldest first."""
    try:
        with open(path, encoding="utf-8") as text:
            lines = text.read().splitlines()
    except OSError as err:
        raise InputError(f"--release-history {path}: cannot read it ({err.strerror})") from err
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise InputError(f"--release-history {path}:{number}: not a JSON line ({err}); "
                             "give the output of `bazel run //tools/release -- history "
                             "--json`") from err
        if not isinstance(record, dict) or "event" not in record:
            raise InputError(f"--release-history {path}:{number}: a record needs an 'event'")
        records.append(record)
    return records


def _tag_of(reference):
    name = (reference or "").rsplit("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def stable_stack(records, tag="stable"):
    """The effective promotes of `tag` after replaying promotes and rollbacks, oldest first.

    A promote pushes its digest. A rollback returns the tag to the digest it
    names: entries above the last occurrence of that digest are undone.
    """
    stack = []
    for record in records:
        if record.get("event") not in ("promote", "rollback"):
            continue
        if _tag_of(record.get("reference")) not in (tag, None):
            continue
        digest = record.get("digest")
        if not digest:
            continue
        entry = {"digest": digest, "reference": record.get("reference", "")}
        if record["event"] == "promote":
            if not stack or stack[-1]["digest"] != digest:
                stack.append(entry)
        else:
            while stack and stack[-1]["digest"] != digest:
                stack.pop()
            if not stack:
                stack.append(entry)
    return stack


def previous_stable(records, tag="stable"):
    """(image reference pinned by digest, digest) of the last-but-one effective promote."""
    stack = stable_stack(records, tag)
    if len(stack) < 2:
        raise InputError(f"the release history has {len(stack)} effective promote(s) of "
                         f"'{tag}': nothing earlier to roll back to")
    entry = stack[-2]
    repository = entry["reference"].rsplit("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[:len(repository) - len(last)] + last.split(":", 1)[0]
    image = images.parse(f"{repository}@{entry['digest']}", what="release history record")
    return image
