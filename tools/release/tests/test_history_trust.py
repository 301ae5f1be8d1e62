"""Promote and rollback trust the release history only as far as the registry backs it:
references come from the settings, a target must have passed validation here, and
still be in the repository with the labels of the validated image. Forged histories
are refused, naming the record. Against a real docker-registry (no image build:
small images with release labels are pushed through the distribution API)."""

import hashlib
import json
import os

import pytest

from tools.release import history, registry as registry_lib, settings as settings_lib
from tools.release.tests import support


@pytest.fixture(name="repo")
def fixture_repo(plain_registry, request):
    """A fresh repository per test: (env, client, digests A and B, both validated and
    A then B promoted to stable by the tool itself)."""
    name = "trust/t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    env = {"MODELSHIP_REGISTRY": plain_registry.address, "MODELSHIP_REPOSITORY": name,
           "MODELSHIP_REGISTRY_RETRIES": "1", "MODELSHIP_REGISTRY_BACKOFF_S": "0.1",
           "MODELSHIP_VERIFY": "0",  # unsigned images: test_signed_release checks signatures
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    client = registry_lib.Client(settings_lib.load(env))
    store = history.Store(client)
    digests = {}
    for seed in ("a", "b"):
        labels = support.releasable_labels(name + seed)
        digest = support.push_image(client, labels, tag=f"candidate-{seed}")
        # What validate records when every gate passed (the gates themselves are
        # exercised by test_release_end_to_end).
        store.append(history.record("validate", digest, f"{client.settings.base}@{digest}",
                                    labels, result="passed", metrics={}))
        digests[seed] = digest
    return {"env": env, "client": client, "store": store, **digests}


def promote(capsys, repo, digest):
    """`promote --digest D`: (status, stdout, stderr)."""
    return support.run_cli(capsys, repo["env"], "promote", "--digest", digest)


def forge(repo, edit):
    """Rewrites the history tag as an attacker with push access could: `edit` gets the
    records and returns the new text."""
    records = repo["store"].read()
    repo["store"].write(edit(records))


def lines(records):
    """JSON-lines text of records."""
    return "".join(json.dumps(r) + "\n" for r in records)


def test_validated_digests_promote_and_roll_back(capsys, repo):
    for digest in (repo["a"], repo["b"]):
        status, _, err = promote(capsys, repo, digest)
        assert status == 0, err
    status, out, err = support.run_cli(capsys, repo["env"], "rollback")
    assert status == 0, err
    assert out.strip().endswith(f"-> {repo['a']} (was {repo['b']})")
    assert repo["client"].resolve("stable") == repo["a"]


def test_rollback_to_a_record_naming_another_registry_is_refused(capsys, repo):
    for digest in (repo["a"], repo["b"]):
        assert promote(capsys, repo, digest)[0] == 0

    def evil(records):
        for record in records:
            if record["event"] == "promote" and record["digest"] == repo["a"]:
                record["reference"] = "evil.example.com/attacker/payload:stable"
        return lines(records)

    forge(repo, evil)
    status, out, err = support.run_cli(capsys, repo["env"], "rollback")
    assert status == 1, out
    assert "rollback refused: release history line 3 (" in err
    assert f"promote {repo['a']})" in err and "'evil.example.com/attacker/payload:stable'" in err
    assert "evil.example.com" not in out
    assert repo["client"].resolve("stable") == repo["b"]


def test_a_validation_recorded_for_another_repository_does_not_count(capsys, repo):
    def elsewhere(records):
        records[0]["reference"] = f"{repo['client'].name}/attacker/payload@{repo['a']}"
        return lines(records)

    forge(repo, elsewhere)
    status, _, err = promote(capsys, repo, repo["a"])
    assert status == 1
    assert "release history line 1 (" in err and f"validate {repo['a']})" in err
    assert "attacker/payload" in err and "another registry or repository" in err
    assert repo["client"].resolve("stable") is None


def test_rollback_to_a_digest_that_never_passed_validation_is_refused(capsys, repo):
    unvalidated = support.push_image(repo["client"], support.releasable_labels("never"))
    for digest in (repo["a"], repo["b"]):
        assert promote(capsys, repo, digest)[0] == 0

    def swap(records):
        # The older release of stable rewritten to a digest nobody validated.
        for record in records:
            if record["event"] == "promote" and record["digest"] == repo["a"]:
                record["digest"] = unvalidated
        return lines(records)

    forge(repo, swap)
    status, _, err = support.run_cli(capsys, repo["env"], "rollback")
    assert status == 1
    assert f"rollback to {unvalidated} (from release history line 3 (" in err
    assert "has not passed validation" in err
    assert repo["client"].resolve("stable") == repo["b"]


def test_a_failed_validation_forged_into_passed_for_another_image_is_refused(capsys, repo):
    other = support.releasable_labels("other image")
    forged = support.push_image(repo["client"], support.releasable_labels("forged"))

    def passed_for_other_labels(records):
        records.append(history.record("validate", forged,
                                      f"{repo['client'].settings.base}@{forged}", other,
                                      result="passed"))
        return lines(records)

    forge(repo, passed_for_other_labels)
    status, _, err = promote(capsys, repo, forged)
    assert status == 1
    assert "release history line 3 (" in err and f"validate {forged}):" in err
    assert f"git_sha '{other['org.opencontainers.image.revision']}'" in err
    assert "is not about this image" in err


def test_rollback_to_a_digest_no_longer_in_the_registry_is_refused(capsys, repo):
    for digest in (repo["a"], repo["b"]):
        assert promote(capsys, repo, digest)[0] == 0
    repo["client"].request("DELETE", f"/v2/{repo['client'].settings.repository}/manifests/"
                           f"{repo['a']}", ok=(202,))
    status, _, err = support.run_cli(capsys, repo["env"], "rollback")
    assert status == 1
    assert f"rollback to {repo['a']}" in err and "release history line 1 (" in err
    assert f"{repo['a']} does not exist" in err
    assert repo["client"].resolve("stable") == repo["b"]


@pytest.mark.parametrize("damage, problem", [
    ("{not json\n", "line 3 ('{not json'): not JSON"),
    ("\n", "line 3 (''): not JSON"),
    ('{"event": "promote", "digest": "sha256:' + "a" * 64 + '\\n", "reference": "x", '
     '"when": "t"}\n', "line 3 ("),
    ('{"event": "deploy", "digest": "sha256:' + "a" * 64 + '", "reference": "x", '
     '"when": "t"}\n', "event 'deploy' is not one of"),
    ('["promote"]\n', "not a JSON object"),
])
def test_a_damaged_history_refuses_every_command_naming_the_line(capsys, repo, damage, problem):
    forge(repo, lambda records: lines(records) + damage)
    for argv in (("promote", "--digest", repo["a"]), ("rollback",), ("history",)):
        status, _, err = support.run_cli(capsys, repo["env"], *argv)
        assert status == 1, argv
        assert "release history" in err and "is damaged" in err and problem in err, err
        assert "Traceback" not in err
    assert repo["client"].resolve("stable") is None
