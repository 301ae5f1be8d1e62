"""Every pipeline document validates against GitLab's CI schema.

The schema is the one check-jsonschema bundles (`vendor.gitlab-ci`), offline.
A component file is two YAML documents, the `spec:` header and the body, and
is validated as two documents; the example consumers and this project's own
.gitlab-ci.yml are validated as written and, once gitlab-ci-local has expanded
every include and input (`--preview`), as the pipeline GitLab would run.
"""

import glob
import os
import subprocess
import sys

import pytest
import yaml

from ci.tests import support

TEMPLATES = sorted(glob.glob(support.workspace_file("templates/*.yml")))
EXAMPLES = ["component", "project", "pick"]


def check_jsonschema(paths):
    """Runs check-jsonschema with GitLab's schema; returns (exit status, output)."""
    argv = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
            "--data-transform", "gitlab-ci"] + list(paths)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    return proc.returncode, proc.stdout


def write_documents(tmp_path, name, documents):
    """Each document in its own file; returns the paths."""
    paths = []
    for index, document in enumerate(documents):
        path = tmp_path / f"{name}.{index}.yml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_there_is_a_template_per_component():
    names = {os.path.basename(path)[:-len(".yml")] for path in TEMPLATES}
    assert {"image-build", "repro-check", "release-gate", "api-gate", "publish", "promote",
            "canary", "pipeline", "check-inputs"} <= names


@pytest.mark.parametrize("path", TEMPLATES, ids=os.path.basename)
def test_component_header_and_body_validate(tmp_path, path):
    header, body = support.split_component(path)
    assert set(header) == {"spec"}, "the header holds `spec:` only"
    status, output = check_jsonschema(write_documents(tmp_path, "doc", [header, body]))
    assert status == 0, output


@pytest.mark.parametrize("path", TEMPLATES, ids=os.path.basename)
def test_component_has_no_global_keywords(path):
    _, body = support.split_component(path)
    global_keywords = {"default", "stages", "workflow", "variables", "image", "services",
                       "cache", "before_script", "after_script"}
    assert not global_keywords & set(body), f"global keywords in a component: {path}"
    for name, job in body.items():
        if name == "include":
            continue
        assert "only" not in job and "except" not in job, f"{name}: use rules"


def test_broken_document_is_refused(tmp_path):
    # The validator itself must catch a mistake, or a pass proves nothing.
    bad = {"job": {"script": ["true"], "when": "sometimes"}}
    status, _ = check_jsonschema(write_documents(tmp_path, "bad", [bad]))
    assert status != 0


def test_broken_spec_header_is_refused(tmp_path):
    bad = {"spec": {"inputs": {"steps": {"type": "colour"}}}}
    status, _ = check_jsonschema(write_documents(tmp_path, "bad", [bad]))
    assert status != 0


def test_own_pipeline_and_examples_validate_as_written():
    paths = [support.workspace_file(".gitlab-ci.yml")] + [
        support.workspace_file(f"ci/examples/{name}.gitlab-ci.yml") for name in EXAMPLES]
    status, output = check_jsonschema(paths)
    assert status == 0, output


@pytest.mark.parametrize("name", EXAMPLES)
def test_expanded_example_pipeline_validates(tmp_path, name):
    offline = support.Offline(str(tmp_path / "offline"))
    project = offline.consumer(name, support.example(name))
    pipeline = support.preview_documents(offline.preview(project))
    status, output = check_jsonschema(write_documents(tmp_path, name, [pipeline]))
    assert status == 0, output
