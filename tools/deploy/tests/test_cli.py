"""The CLI contract: exit statuses and one-line errors (kubernetes target, recorded)."""

import json

import pytest

from tools.deploy import main
from tools.deploy.tests.recorder import RecordingKubectl

REPO = "registry.example/team/iris"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


@pytest.fixture(name="deploy")
def fixture_deploy(tmp_path):
    """run(*argv) -> exit status, against a recorded kubectl (run.kubectl)."""
    kubectl = RecordingKubectl()

    def run(*argv):
        return main.main(["--target", "kubernetes", "--state-dir", str(tmp_path)] + list(argv),
                         kubectl=kubectl)
    run.kubectl = kubectl
    return run


def test_tag_is_refused_with_exit_2_and_no_cluster_call(deploy, capsys):
    assert deploy("deploy", "--image", f"{REPO}:stable") == 2
    err = capsys.readouterr().err
    assert err.startswith("deploy: --image") and "REF@sha256:" in err
    assert "Traceback" not in err
    assert deploy.kubectl.calls == []


@pytest.mark.parametrize("weight", ["-1", "101"])
def test_weight_out_of_range_is_exit_2(deploy, capsys, weight):
    deploy("deploy", "--image", f"{REPO}@{A}")
    assert deploy("canary", "--image", f"{REPO}@{B}", "--weight", weight) == 2
    assert "0 to 100" in capsys.readouterr().err


def test_promote_without_canary_is_exit_2(deploy, capsys):
    deploy("deploy", "--image", f"{REPO}@{A}")
    assert deploy("promote") == 2
    assert "no canary to promote" in capsys.readouterr().err


def test_canary_before_any_deploy_is_exit_2(deploy, capsys):
    assert deploy("canary", "--image", f"{REPO}@{B}", "--weight", "10") == 2
    assert "run `deploy" in capsys.readouterr().err


@pytest.mark.parametrize("steps", ["10,5", "0,10", "ten", "10,150"])
def test_bad_steps_are_exit_2(deploy, capsys, steps):
    assert deploy("run-canary", "--image", f"{REPO}@{B}", "--steps", steps) == 2
    assert "--steps" in capsys.readouterr().err


def test_unknown_command_is_exit_2(deploy):
    with pytest.raises(SystemExit) as exit_info:
        deploy("launch")
    assert exit_info.value.code == 2


def test_global_options_go_after_the_command_too(tmp_path, capsys):
    kubectl = RecordingKubectl()
    assert main.main(["deploy", "--target", "kubernetes", "--state-dir", str(tmp_path),
                      "--image", f"{REPO}@{A}"], kubectl=kubectl) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "kubernetes"


def test_state_dir_of_another_target_is_refused(tmp_path, capsys):
    kubectl = RecordingKubectl()
    main.main(["--target", "kubernetes", "--state-dir", str(tmp_path), "deploy", "--image",
               f"{REPO}@{A}"], kubectl=kubectl)
    assert main.main(["--target", "local", "--state-dir", str(tmp_path), "status"]) == 2
    assert "belongs to target 'kubernetes'" in capsys.readouterr().err


def test_rollback_uses_the_release_history_when_given(deploy, tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({"event": "promote", "digest": d,
                                           "reference": f"{REPO}:stable"}) + "\n"
                               for d in (A, B)))
    deploy("deploy", "--image", f"{REPO}@{B}")
    capsys.readouterr()
    assert deploy("rollback", "--release-history", str(history)) == 0
    assert json.loads(capsys.readouterr().out) == {
        "rolled_back": "stable", "stable": A, "was": B, "source": "release history"}
    applied = deploy.kubectl.applied()[("Deployment", "iris-stable")]
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == f"{REPO}@{A}"


def test_failing_kubectl_is_exit_1_with_its_message(tmp_path, capsys):
    assert main.main(["--target", "kubernetes", "--state-dir", str(tmp_path),
                      "--kubectl", "/bin/false", "deploy", "--image", f"{REPO}@{A}"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("deploy: kubectl apply")


def test_rollback_takes_only_the_digest_from_the_release_history(deploy, tmp_path, capsys):
    # A rewritten history naming another registry and repository: production
    # goes back to that digest in its own repository, never to the other one.
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({"event": "promote", "digest": d,
                                           "reference": f"evil.example.com/attacker/payload:{t}"})
                               + "\n" for d, t in ((A, "stable"), (B, "stable"))))
    deploy("deploy", "--image", f"{REPO}@{B}")
    capsys.readouterr()
    assert deploy("rollback", "--release-history", str(history)) == 0
    applied = deploy.kubectl.applied()[("Deployment", "iris-stable")]
    assert applied["spec"]["template"]["spec"]["containers"][0]["image"] == f"{REPO}@{A}"


def test_objects_are_named_after_the_repository_of_the_first_image(deploy, capsys):
    assert deploy("deploy", "--image", f"registry.example/nlp/sentiment@{A}") == 0
    assert ("Deployment", "sentiment-stable") in deploy.kubectl.applied()
    # A later image from another repository keeps the objects it started with.
    assert deploy("canary", "--image", f"registry.example/nlp/sentiment-v2@{B}",
                  "--weight", "10") == 0
    assert ("Deployment", "sentiment-canary") in deploy.kubectl.applied()
    assert not [key for key in deploy.kubectl.applied() if key[1].startswith("sentiment-v2")]
    capsys.readouterr()
    assert deploy("status") == 0
    assert json.loads(capsys.readouterr().out)["details"]["name"] == "sentiment"


def test_name_option_overrides_the_repository(deploy):
    assert deploy("--name", "fraud", "deploy", "--image", f"{REPO}@{A}") == 0
    applied = deploy.kubectl.applied()
    assert ("Deployment", "fraud-stable") in applied
    assert applied[("Ingress", "fraud-stable")]["spec"]["rules"][0]["host"] == "fraud.local"
    # Recorded: later commands need not repeat it.
    assert deploy("canary", "--image", f"{REPO}@{B}", "--weight", "5") == 0
    assert ("Deployment", "fraud-canary") in deploy.kubectl.applied()


def test_another_name_for_running_tracks_is_exit_2(deploy, capsys):
    deploy("deploy", "--image", f"{REPO}@{A}")
    calls = list(deploy.kubectl.calls)
    assert deploy("--name", "other", "canary", "--image", f"{REPO}@{B}", "--weight", "5") == 2
    err = capsys.readouterr().err
    assert "--name other" in err and "'iris'" in err and "--state-dir" in err
    assert deploy.kubectl.calls == calls


@pytest.mark.parametrize("argv, said", [
    (["--name", "Bad_Name", "deploy", "--image", f"{REPO}@{A}"], "--name 'Bad_Name'"),
    (["deploy", "--image", f"registry.example/team/3d@{A}"], "pass --name NAME"),
])
def test_a_name_that_cannot_name_objects_is_exit_2(deploy, capsys, argv, said):
    assert deploy(*argv) == 2
    assert said in capsys.readouterr().err
    assert deploy.kubectl.calls == []
