"""Which jobs a consumer's pipeline gets, situation by situation.

Built by gitlab-ci-local (`--list-json`) from the full pipeline component, as
GitLab would build it on the default branch, a feature branch, a tag, a merge
request, during a deploy freeze, and with the canary on (manual or timed) or
off; every situation must also pass `--validate-dependency-chain` (each job a
job needs or depends on is in the pipeline too).
"""

import pytest

from ci.tests import support

CONSUMER = """\
include:
  - component: $CI_SERVER_FQDN/platform/modelship/pipeline@1.0.0
    inputs:
      repository: $CI_PROJECT_PATH/iris
      api_releases: services/iris/api/releases
      api_contract: services/iris
      deploy_target: local
{extra}"""

GATES = {
    "modelship-image-lint": "on_success",
    "modelship-image-test": "on_success",
    "modelship-image-production": "on_success",
    "modelship-reproducible": "on_success",
    "modelship-release-gate": "on_success",
    "modelship-api-breaking": "on_success",
}
RELEASE = {
    "modelship-publish": "on_success",
    "modelship-promote-stable": "manual",
}
MANUAL_CANARY = {
    "modelship-canary-production: [10]": "manual",
    "modelship-canary-production: [25]": "manual",
    "modelship-canary-production: [50]": "manual",
    "modelship-canary-production-abort": "on_failure",
}
DEPLOY = {
    "modelship-rollout-production": "on_success",
    "modelship-rollback-production": "manual",
}
PROTECTED = support.PROTECTED
TAG = ["--variable", "CI_COMMIT_TAG=1.4.0", "--variable", "CI_COMMIT_REF_NAME=1.4.0",
       "--unset-variable", "CI_COMMIT_BRANCH"]
MERGE_REQUEST = ["--variable", "CI_PIPELINE_SOURCE=merge_request_event",
                 "--variable", "CI_MERGE_REQUEST_IID=7", "--unset-variable", "CI_COMMIT_BRANCH"]
FREEZE = ["--variable", "CI_DEPLOY_FREEZE=true"]

SITUATIONS = {
    # name: (extra inputs, branch, gitlab-ci-local arguments, expected jobs)
    "default_branch": ("", "main", PROTECTED, {**GATES, **RELEASE, **MANUAL_CANARY, **DEPLOY}),
    "feature_branch": ("", "feature/faster-kernels", [], GATES),
    "protected_feature_branch": ("", "feature/faster-kernels", PROTECTED, GATES),
    "tag": ("", "main", TAG + PROTECTED, {**GATES, **RELEASE, **MANUAL_CANARY, **DEPLOY}),
    # Anyone with push access can make a tag that no protection rule covers:
    # it must get no registry credentials and no deploy.
    "unprotected_tag": ("", "main", TAG, GATES),
    "unprotected_default_branch": ("", "main", [], GATES),
    "merge_request": ("", "feature/faster-kernels", MERGE_REQUEST, GATES),
    "deploy_freeze": ("", "main", FREEZE + PROTECTED,
                      {**GATES, "modelship-publish": "on_success"}),
    "tag_in_deploy_freeze": ("", "main", TAG + FREEZE + PROTECTED,
                             {**GATES, "modelship-publish": "on_success"}),
    "canary_off": ("      canary: false\n", "main", PROTECTED, {**GATES, **RELEASE, **DEPLOY}),
    "canary_timed": ("      mode: timed\n", "main", PROTECTED,
                     {**GATES, **RELEASE, **DEPLOY,
                      "modelship-canary-production-timed": "on_success",
                      "modelship-canary-production-abort": "on_failure"}),
    "canary_steps_from_input": ("      steps: [5, 50]\n", "main", PROTECTED,
                                {**GATES, **RELEASE, **DEPLOY,
                                 "modelship-canary-production: [5]": "manual",
                                 "modelship-canary-production: [50]": "manual",
                                 "modelship-canary-production-abort": "on_failure"}),
    "no_reproducibility_check": ("      reproducible: false\n", "feature/x", [],
                                 {k: v for k, v in GATES.items()
                                  if k != "modelship-reproducible"}),
}


@pytest.fixture(scope="module", name="offline")
def fixture_offline(tmp_path_factory):
    """The component project, served offline."""
    return support.Offline(str(tmp_path_factory.mktemp("offline")))


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
def test_pipeline_has_exactly_the_jobs_of_the_situation(offline, situation):
    extra, branch, args, expected = SITUATIONS[situation]
    project = offline.consumer(situation, CONSUMER.format(extra=extra), branch=branch)
    assert offline.jobs(project, *args) == expected
    offline.gcl(project, "--validate-dependency-chain", *args, *run_manual_jobs(expected))


def run_manual_jobs(jobs):
    """--manual for every manual job: the chain is checked as if people ran them."""
    names = sorted({name.split(":", 1)[0] for name, when in jobs.items() if when == "manual"})
    return [arg for name in names for arg in ("--manual", name)]


def test_a_component_included_twice_gets_distinct_jobs(offline):
    project = offline.consumer("pick", support.example("pick"))
    jobs = offline.jobs(project, *PROTECTED)
    assert {"modelship-image-lint", "modelship-image-production"} <= set(jobs)
    assert jobs["modelship-promote-stable"] == "manual"
    offline.gcl(project, "--validate-dependency-chain", *PROTECTED, *run_manual_jobs(jobs))


def test_job_prefix_renames_every_job(offline):
    extra = "      job_prefix: iris\n      environment: staging\n"
    project = offline.consumer("prefixed", CONSUMER.format(extra=extra))
    jobs = offline.jobs(project, *PROTECTED)
    assert jobs and all(name.startswith("iris-") for name in jobs), jobs
    assert "iris-rollout-staging" in jobs
    assert "iris-canary-staging: [25]" in jobs


@pytest.fixture(scope="module", name="pipeline")
def fixture_pipeline(offline):
    """The expanded pipeline (--preview) of the default consumer."""
    project = offline.consumer("expanded", CONSUMER.format(extra=""))
    return support.preview_documents(offline.preview(project, *PROTECTED))


HISTORY_WRITERS = ["modelship-publish", "modelship-promote-stable",
                   "modelship-rollback-production"]


def test_promote_names_the_environment_so_protection_gates_the_tag_move(pipeline):
    promote = pipeline["modelship-promote-stable"]
    assert promote["environment"] == {"name": "production", "action": "prepare"}
    assert promote["environment"]["name"] == \
        pipeline["modelship-rollout-production"]["environment"]["name"]


def test_every_history_writer_and_deploy_shares_one_resource_group(pipeline):
    groups = {name: job.get("resource_group") for name, job in pipeline.items()
              if isinstance(job, dict) and not name.startswith(".")
              and (name in HISTORY_WRITERS or "environment" in job)}
    assert set(HISTORY_WRITERS) <= set(groups)
    assert set(groups.values()) == {"modelship-release/$CI_PROJECT_PATH/iris"}, groups


def test_the_model_s_values_reach_the_jobs_from_the_inputs(pipeline):
    # The components name no model: the repository and the contract folders
    # the jobs use are the consumer's inputs.
    assert pipeline["modelship-publish"]["variables"]["MODELSHIP_REPOSITORY"] == \
        "$CI_PROJECT_PATH/iris"
    for name, job in pipeline.items():
        if name.startswith("modelship-canary-") or name.startswith("modelship-roll"):
            assert job["variables"]["MODELSHIP_REPOSITORY"] == "$CI_PROJECT_PATH/iris", name
    gate = pipeline["modelship-api-breaking"]["variables"]
    assert (gate["MODELSHIP_API_RELEASES"], gate["MODELSHIP_API_CONTRACT"]) == \
        ("services/iris/api/releases", "services/iris")


def test_two_promote_tags_of_one_repository_share_its_resource_group(offline):
    text = ("include:\n"
            "  - component: $CI_SERVER_FQDN/platform/modelship/image-build@1.0.0\n"
            "  - component: $CI_SERVER_FQDN/platform/modelship/publish@1.0.0\n"
            "    inputs:\n      repository: team/toy\n"
            "  - component: $CI_SERVER_FQDN/platform/modelship/promote@1.0.0\n"
            "    inputs:\n      repository: team/toy\n"
            "  - component: $CI_SERVER_FQDN/platform/modelship/promote@1.0.0\n"
            "    inputs:\n      tag: latest\n      repository: team/toy\n"
            "  - component: $CI_SERVER_FQDN/platform/modelship/image-build@1.0.0\n"
            "    inputs:\n      job_prefix: other\n"
            "  - component: $CI_SERVER_FQDN/platform/modelship/publish@1.0.0\n"
            "    inputs:\n      job_prefix: other\n      repository: team/other\n")
    project = offline.consumer("two-tags", text)
    pipeline = support.preview_documents(offline.preview(project, *PROTECTED))
    assert offline.jobs(project, *PROTECTED)["modelship-promote-latest"] == "manual"
    assert pipeline["modelship-promote-stable"]["resource_group"] == \
        pipeline["modelship-promote-latest"]["resource_group"] == \
        pipeline["modelship-publish"]["resource_group"]
    assert pipeline["other-publish"]["resource_group"] == "modelship-release/team/other"


@pytest.mark.parametrize("component", ["publish", "promote"])
def test_publish_and_promote_name_no_default_repository(offline, component):
    project = offline.consumer(f"no-repository-{component}", (
        "include:\n"
        "  - component: $CI_SERVER_FQDN/platform/modelship/image-build@1.0.0\n"
        "  - component: $CI_SERVER_FQDN/platform/modelship/publish@1.0.0\n"
        "    inputs:\n      repository: team/toy\n"
        f"  - component: $CI_SERVER_FQDN/platform/modelship/{component}@1.0.0\n"
        "    inputs:\n      job_prefix: other\n"))
    proc = offline.gcl(project, "--preview", *PROTECTED, check=False)
    assert proc.returncode != 0
    assert "`repository` input: required value has not been provided" in \
        proc.stdout + proc.stderr


def test_setup_and_tool_reach_scripts_as_variables_never_as_script_text(pipeline):
    for name, job in pipeline.items():
        if name.startswith(".") or not isinstance(job, dict) or "script" not in job:
            continue
        lines = "\n".join(job.get("before_script", []) + job["script"])
        assert "tools/bootstrap" not in lines and "tools/ci/modelship-tool" not in lines, name
        assert job["variables"]["MODELSHIP_SETUP"] == "tools/bootstrap", name
        assert job["variables"]["MODELSHIP_TOOL"] == "tools/ci/modelship-tool", name
