"""The CLI edge: bad input gets one line and exit 2, before any registry is touched."""

import pytest

from tools.release.tests import support

# A registry address nothing listens on: reaching it would fail differently (exit 1).
ENV = {"MODELSHIP_REGISTRY": "127.0.0.1:9", "MODELSHIP_REPOSITORY": "team/model",
       "MODELSHIP_REGISTRY_RETRIES": "0", "MODELSHIP_VERIFY": "0"}


@pytest.mark.parametrize("digest, message", [
    ("stable", "looks like a tag"),
    ("modelship/digits:stable", "looks like a tag"),
    ("127.0.0.1:5000/modelship/digits@sha256:" + "a" * 64, "only the part after '@'"),
    ("sha256:abc", "is not a digest"),
    ("sha256:" + "a" * 64 + "\n", "is not a digest"),
])
def test_promote_and_validate_take_only_a_digest(capsys, digest, message):
    for command in ("promote", "validate"):
        status, out, err = support.run_cli(capsys, ENV, command, "--digest", digest)
        assert status == 2, (command, out, err)
        assert message in err and err.endswith("\n"), err


def test_publish_names_a_missing_archive(capsys, tmp_path):
    status, _, err = support.run_cli(capsys, ENV, "publish", "--archive",
                                     str(tmp_path / "nope.oci.tar"))
    assert status == 2 and "no such file" in err and "bazel run //<pkg>:image" in err


def test_publish_names_an_archive_that_is_not_an_image(capsys, tmp_path):
    broken = tmp_path / "broken.oci.tar"
    broken.write_text("not a tar")
    status, _, err = support.run_cli(capsys, ENV, "publish", "--archive", str(broken))
    assert status == 2 and "is not a readable OCI archive" in err
    assert "Traceback" not in err


def test_an_unreachable_registry_is_named(capsys):
    status, _, err = support.run_cli(capsys, ENV, "history")
    assert status == 1
    assert "registry 127.0.0.1:9 is unavailable" in err
    assert "Traceback" not in err


def test_rollback_refuses_the_history_tag_as_a_release_tag(capsys):
    status, _, err = support.run_cli(capsys, ENV, "rollback", "--tag", "release-history")
    assert status == 2 and "is not a release tag" in err


def test_without_the_image_spec_validate_and_gate_name_the_release_target(capsys):
    for argv in (("validate", "--digest", "sha256:" + "a" * 64), ("gate",)):
        status, _, err = support.run_cli(capsys, ENV, *argv)
        assert status == 2, err
        assert "bazel run //<pkg>:<name>.release" in err and "Traceback" not in err


def test_without_the_image_spec_publish_needs_an_archive(capsys):
    status, _, err = support.run_cli(capsys, ENV, "publish")
    assert status == 2 and "publish needs --archive" in err


def test_without_the_image_spec_the_repository_must_be_named(capsys):
    env = dict(ENV)
    del env["MODELSHIP_REPOSITORY"]
    status, _, err = support.run_cli(capsys, env, "history")
    assert status == 2
    assert "no repository: set MODELSHIP_REPOSITORY or --repository" in err
