"""ShellCheck finds nothing in any job script, after inputs are interpolated.

The scripts are taken from gitlab-ci-local's `--preview` of consumers that
between them produce every job of every component (canary manual, timed and
off; a pick of single components; this project's own pipeline), so what is
checked is the text a runner would execute, not the template with `$[[ ]]`
holes. Each job's before_script, script and after_script are checked as one
bash script, the way GitLab's runner runs them.
"""

import subprocess

import pytest

from ci.tests import support

CONSUMERS = {
    "component": lambda: support.example("component"),
    "project_canary_off": lambda: support.example("project"),
    "pick": lambda: support.example("pick"),
    "timed_canary": lambda: (
        "include:\n  - component: $CI_SERVER_FQDN/platform/modelship/pipeline@1.0.0\n"
        "    inputs:\n      deploy_target: local\n      mode: timed\n"
        "      repository: team/iris\n      api_releases: services/iris/api/releases\n"
        "      api_contract: services/iris\n"
        "      deploy_args: --state-dir .modelship/deploy --port 18080\n"),
    "check_inputs": lambda: (
        "include:\n  - component: $CI_SERVER_FQDN/platform/modelship/check-inputs@1.0.0\n"
        "    inputs:\n      files: .gitlab-ci.yml ci/examples/pick.gitlab-ci.yml\n"),
}
SCRIPT_KEYS = ("before_script", "script", "after_script")


def shellcheck(text):
    """ShellCheck's findings on a bash script (empty when clean)."""
    proc = subprocess.run(["shellcheck", "--shell=bash", "--format=gcc", "-"], input=text,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    return proc.stdout.strip() if proc.returncode else ""


def job_scripts(pipeline):
    """{job name: its script lines as one bash script} of an expanded pipeline."""
    scripts = {}
    for name, job in pipeline.items():
        if name.startswith(".") or not isinstance(job, dict) or "script" not in job:
            continue
        lines = [line for key in SCRIPT_KEYS for line in job.get(key) or []]
        scripts[name] = "#!/bin/bash\nset -eo pipefail\n" + "\n".join(lines) + "\n"
    return scripts


@pytest.fixture(scope="module", name="offline")
def fixture_offline(tmp_path_factory):
    """The component project, served offline."""
    return support.Offline(str(tmp_path_factory.mktemp("offline")))


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_interpolated_job_scripts_pass_shellcheck(offline, consumer):
    project = offline.consumer(consumer, CONSUMERS[consumer]())
    scripts = job_scripts(support.preview_documents(offline.preview(project)))
    assert scripts
    findings = {name: shellcheck(text) for name, text in sorted(scripts.items())}
    findings = {name: found for name, found in findings.items() if found}
    assert not findings, "\n".join(f"{name}:\n{found}" for name, found in findings.items())


def test_every_job_of_every_component_is_checked(offline):
    names = set()
    for consumer, text in CONSUMERS.items():
        project = offline.consumer(consumer + "-names", text())
        names |= set(job_scripts(support.preview_documents(offline.preview(project))))
    assert {"modelship-image-production", "modelship-reproducible", "modelship-release-gate",
            "modelship-api-breaking", "modelship-publish", "modelship-promote-stable",
            "modelship-canary-production", "modelship-canary-production-timed",
            "modelship-canary-production-abort", "modelship-rollout-production",
            "modelship-rollback-production", "modelship-check-inputs"} <= names


def test_shellcheck_catches_a_broken_script():
    assert "SC2086" in shellcheck("#!/bin/bash\nrm -rf $TARGET_DIR/cache\n")
