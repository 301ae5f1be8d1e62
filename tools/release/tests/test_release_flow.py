"""Done when: publish, validate, promote, a second release, rollback, against the real
registry (htpasswd on), asserting the digest at each reference after each step, and
the history that rollback and the deploy tooling read."""

import json

import pytest

from tools.release import registry as registry_lib, settings as settings_lib
from tools.release.tests import support

REPOSITORY = "flow/digits"


@pytest.fixture(name="env", scope="module")
def fixture_env(registry, tmp_path_factory):
    """The release job environment of this module's repository (with a local copy of
    the history)."""
    local = tmp_path_factory.mktemp("history") / "history.jsonl"
    return registry.env(REPOSITORY, MODELSHIP_RELEASE_HISTORY_FILE=str(local))


@pytest.fixture(name="client", scope="module")
def fixture_client(env):
    """A registry client, to read references behind the CLI's back."""
    return registry_lib.Client(settings_lib.load(env))


def history(capsys, env):
    """The records `history --json` prints."""
    status, out, err = support.run_cli(capsys, env, "history", "--json")
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_publish_validate_promote_second_release_and_rollback(
        capsys, env, client, images, registry, tmp_path):
    first, second = images["digests"]["first"], images["digests"]["second"]
    labels = images["report"]["labels"]
    sha = labels["org.opencontainers.image.revision"]
    candidate = f"candidate-{sha[:12]}"
    base = f"{registry.address}/{REPOSITORY}"

    # publish: pushed by digest under candidate-<sha>; digest printed and in the dotenv.
    dotenv = tmp_path / "release.env"
    status, out, err = support.run_cli(capsys, env, "publish", "--archive", images["first"],
                                       "--dotenv", str(dotenv))
    assert status == 0, err
    assert out.splitlines()[-1] == first == images["report"]["digest"]
    assert client.resolve(candidate) == first
    assert client.resolve("stable") is None
    assert dotenv.read_text() == (f"RELEASE_DIGEST={first}\nRELEASE_IMAGE={base}@{first}\n"
                                  f"RELEASE_CANDIDATE_TAG={candidate}\n")

    # promote before validate: refused, nothing moves.
    status, _, err = support.run_cli(capsys, env, "promote", "--digest", first)
    assert status == 1 and "has not passed validation" in err, err
    assert client.resolve("stable") is None

    # validate: every gate on a container of that digest.
    status, out, err = support.run_cli(capsys, env, *support.RELEASE_SPEC, "validate",
                                       "--digest", first)
    assert status == 0, out + err
    assert out.splitlines()[-1] == f"VALID {first}"
    for gate in ("labels:", "model:", "contract:", "operating point:"):
        assert f"PASS  {gate}" in out, (gate, out)
    assert "FAIL" not in out
    assert "the running image is the validated digest" in out

    # promote: stable and the version tag point at the validated digest.
    status, out, err = support.run_cli(capsys, env, "promote", "--digest", first,
                                       "--version-tag")
    assert status == 0, err
    version_tag = f"{labels['io.modelship.model.version'][:12]}-{sha[:12]}"
    assert out.splitlines() == [f"{base}:{version_tag} -> {first}", f"{base}:stable -> {first}"]
    assert client.resolve("stable") == first
    assert client.resolve(version_tag) == first

    # a second release: its own candidate tag, validated, promoted.
    status, out, err = support.run_cli(capsys, env, "publish", "--archive", images["second"])
    assert status == 0, err
    assert out.splitlines()[-1] == second != first
    assert client.resolve(f"candidate-{images['second_sha'][:12]}") == second
    assert client.resolve(candidate) == first
    status, out, err = support.run_cli(capsys, env, *support.RELEASE_SPEC, "validate",
                                       "--digest", second)
    assert status == 0, out + err
    status, out, err = support.run_cli(capsys, env, "promote", "--digest", second)
    assert status == 0, err
    assert client.resolve("stable") == second
    assert client.resolve(version_tag) == first

    # rollback: one command, stable is the first release again; no rebuild, same digest.
    status, out, err = support.run_cli(capsys, env, "rollback")
    assert status == 0, err
    assert out.strip() == f"{base}:stable -> {first} (was {second})"
    assert client.resolve("stable") == first
    assert client.resolve(f"candidate-{images['second_sha'][:12]}") == second

    # nothing older to go back to: refused, stable stays.
    status, _, err = support.run_cli(capsys, env, "rollback")
    assert status == 1 and "nothing to roll back to" in err, err
    assert client.resolve("stable") == first

    records = history(capsys, env)
    assert [(r["event"], r["digest"], r.get("tag")) for r in records] == [
        ("publish", first, candidate),
        ("validate", first, None),
        ("promote", first, version_tag),
        ("promote", first, "stable"),
        ("publish", second, f"candidate-{images['second_sha'][:12]}"),
        ("validate", second, None),
        ("promote", second, "stable"),
        ("rollback", first, "stable"),
    ]
    for record in records:
        for key in ("event", "digest", "reference", "git_sha", "model_version", "api_version",
                    "metrics", "who", "when"):
            assert record.get(key) is not None, (key, record)
        assert record["model_version"] == labels["io.modelship.model.version"]
    assert [r["git_sha"] for r in records if r["event"] == "publish"] == [
        sha, images["second_sha"]]
    assert records[1]["result"] == "passed"
    assert {"test_accuracy", "latency_p95_ms", "memory_mib"} <= set(records[1]["metrics"])
    assert records[6]["previous_digest"] == first
    assert records[7]["previous_digest"] == second
    assert records[3]["reference"] == f"{base}:stable"
    with open(env["MODELSHIP_RELEASE_HISTORY_FILE"], encoding="utf-8") as local:
        assert [json.loads(line) for line in local] == records
