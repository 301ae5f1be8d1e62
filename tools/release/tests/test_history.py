"""The release history's rules: which digest rollback goes back to, what counts as
validated."""

import re

import pytest

from tools.release import history

A, B, C = ("sha256:" + c * 64 for c in "abc")


def event(kind, digest, tag=None, **fields):
    """A history record with what the rules read."""
    return {"event": kind, "digest": digest, "tag": tag, **fields}


def test_rollback_target_walks_back_one_release_per_rollback():
    records = [event("promote", A, "stable", previous_digest=None),
               event("promote", B, "stable", previous_digest=A),
               event("promote", C, "stable", previous_digest=B)]
    assert history.released(records, "stable") == ([A, B, C], None)
    records.append(event("rollback", B, "stable", previous_digest=C))
    assert history.released(records, "stable") == ([A, B], None)
    records.append(event("rollback", A, "stable", previous_digest=B))
    assert history.released(records, "stable") == ([A], None)


def test_other_tags_do_not_count():
    records = [event("promote", A, "stable"), event("promote", B, "canary"),
               event("publish", C, "candidate-x")]
    assert history.released(records, "stable") == ([A], None)


def test_a_tag_set_before_the_first_promote_is_where_rollback_ends():
    records = [event("promote", B, "stable", previous_digest=A)]
    assert history.released(records, "stable") == ([B], A)


def test_only_the_latest_validation_of_a_digest_counts():
    records = [event("validate", A, result="passed"), event("validate", A, result="failed"),
               event("validate", B, result="passed")]
    assert history.validated(records, A) is None
    assert history.validated(records, B)["result"] == "passed"
    assert history.validated(records, C) is None


def test_a_line_that_is_not_a_record_is_named_by_its_number():
    good = '{"event": "publish", "digest": "%s", "reference": "r", "when": "t"}\n' % A
    assert len(history.parse(good + good)) == 2
    for text, problem in ((good + "\n" + good, "line 2 (''): not JSON"),
                          (good + good.replace(A, A + "\\n"), "line 2 ("),
                          (good.replace(A, "evil.example.com/x@" + A), "line 1 ("),
                          (good.replace('"r"', "null"), "reference None is not a string")):
        with pytest.raises(ValueError, match=re.escape(problem)):
            history.parse(text)
