"""The previous stable digest, replayed from release history records."""

import json

import pytest

from tools.deploy import history
from tools.deploy.errors import InputError

REPO = "127.0.0.1:5000/team/iris"


def digest(n):
    """A made-up digest, one hex digit repeated."""
    return "sha256:" + f"{n:x}" * 64


def record(event, n, tag="stable"):
    """A record as `//tools/release -- history --json` prints it."""
    reference = f"{REPO}:{tag}" if event in ("promote", "rollback") else f"{REPO}@{digest(n)}"
    return {"event": event, "digest": digest(n), "reference": reference, "git_sha": "1" * 40,
            "model_version": "2" * 64, "api_version": "1.0", "when": "2026-12-01T00:00:00Z"}


def write(tmp_path, records, extra=""):
    """The records as a JSON-lines file; its path."""
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + extra)
    return str(path)


def test_previous_stable_is_the_last_but_one_promote(tmp_path):
    path = write(tmp_path, [record("publish", 1), record("validate", 1), record("promote", 1),
                            record("publish", 2), record("promote", 2), record("publish", 3),
                            record("promote", 3)])
    image = history.previous_stable(history.read(path))
    assert image.reference == f"{REPO}@{digest(2)}"


def test_rolled_back_promote_is_not_effective():
    records = [record("promote", 1), record("promote", 2), record("promote", 3),
               record("rollback", 2)]
    assert [e["digest"] for e in history.stable_stack(records)] == [digest(1), digest(2)]
    assert history.previous_stable(records).digest == digest(1)


def test_promotes_of_other_tags_are_ignored():
    records = [record("promote", 1), record("promote", 4, tag="canary"), record("promote", 2)]
    assert history.previous_stable(records).digest == digest(1)


def test_a_single_promote_has_no_previous():
    with pytest.raises(InputError, match="1 effective promote"):
        history.previous_stable([record("publish", 1), record("promote", 1)])


def test_a_line_that_is_not_json_is_named(tmp_path):
    path = write(tmp_path, [record("promote", 1)], extra="not json\n")
    with pytest.raises(InputError, match=r"history.jsonl:2: not a JSON line"):
        history.read(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="--release-history .*cannot read it"):
        history.read(str(tmp_path / "absent.jsonl"))
