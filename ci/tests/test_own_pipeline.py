"""This project's own .gitlab-ci.yml: the components at the pipeline's own
commit, the Bazel suite, and a catalog release on semver tags only.

The test makes a copy of this project (its pipeline, templates and examples)
whose origin is the component project itself, so
`$CI_SERVER_FQDN/$CI_PROJECT_PATH/pipeline@$CI_COMMIT_SHA` names this very
commit, and the nested includes are fetched at that SHA.
"""

import os
import shutil

import pytest

from ci.tests import support

SELF_REMOTE = f"git@{support.HOST}:{support.COMPONENT_PROJECT}.git"
RELEASE_IMAGE = "registry.example/release-cli@sha256:" + "ab" * 32


@pytest.fixture(scope="module", name="own")
def fixture_own(tmp_path_factory):
    """(offline, path) of a copy of this project pushed to the component server."""
    return make_own(str(tmp_path_factory.mktemp("own")))


def make_own(root):
    """A copy of this project, committed and pushed to the component server."""
    offline = support.Offline(root, self_hosted=True)
    path = os.path.join(root, "modelship")
    support.copy_templates(path)
    shutil.copyfile(support.workspace_file(".gitlab-ci.yml"), os.path.join(path, ".gitlab-ci.yml"))
    os.makedirs(os.path.join(path, "ci", "examples"))
    for name in ("component", "project", "pick"):
        shutil.copyfile(support.workspace_file(f"ci/examples/{name}.gitlab-ci.yml"),
                        os.path.join(path, "ci", "examples", f"{name}.gitlab-ci.yml"))
    support.init_repo(path, remote=SELF_REMOTE)
    bare = os.path.join(offline.server, support.COMPONENT_PROJECT + ".git")
    support.git(path, "push", "-q", "--force", bare, "HEAD:refs/heads/main")
    return offline, path


def tag_pipeline(tag):
    """gitlab-ci-local arguments of a pipeline for a tag, with the release image set."""
    return ["--variable", f"CI_COMMIT_TAG={tag}", "--variable", f"CI_COMMIT_REF_NAME={tag}",
            "--unset-variable", "CI_COMMIT_BRANCH", *support.PROTECTED,
            "--variable", f"MODELSHIP_RELEASE_CLI_IMAGE={RELEASE_IMAGE}"]


def test_own_pipeline_runs_the_components_of_its_commit(own):
    offline, path = own
    jobs = offline.jobs(path, *support.PROTECTED)
    assert {"modelship-image-production", "modelship-release-gate", "modelship-publish",
            "modelship-promote-stable", "modelship-rollout-production", "bazel-test",
            "modelship-check-inputs"} <= set(jobs)
    assert "release-components" not in jobs
    pipeline = support.preview_documents(offline.preview(path))
    assert "$[[" not in str(pipeline)
    assert pipeline["modelship-publish"]["variables"]["MODELSHIP_REPOSITORY"] == \
        "$CI_PROJECT_PATH/digits"


def test_own_pipeline_ships_the_embeddings_image_through_the_same_components(own):
    offline, path = own
    jobs = offline.jobs(path, *support.PROTECTED)
    assert {"embeddings-image-lint", "embeddings-image-test", "embeddings-image-production",
            "embeddings-reproducible", "embeddings-release-gate", "embeddings-api-breaking",
            "embeddings-publish", "embeddings-promote-stable",
            "embeddings-rollout-production", "embeddings-rollback-production"} <= set(jobs)
    pipeline = support.preview_documents(offline.preview(path))
    target = "//services/embeddings:image.release"
    for job in ("embeddings-image-production", "embeddings-reproducible",
                "embeddings-release-gate", "embeddings-publish"):
        assert pipeline[job]["variables"]["MODELSHIP_RELEASE_TARGET"] == target, job
    assert pipeline["embeddings-publish"]["variables"]["MODELSHIP_REPOSITORY"] == \
        "$CI_PROJECT_PATH/embeddings"
    assert pipeline["embeddings-api-breaking"]["variables"]["MODELSHIP_API_RELEASES"] == \
        "services/embeddings/api/releases"
    # The digits jobs still build the default image.
    assert pipeline["modelship-image-production"]["variables"][
        "MODELSHIP_RELEASE_TARGET"] == "//:image.release"


def test_a_template_change_is_in_the_pipeline_of_its_own_commit(tmp_path_factory):
    offline, path = make_own(str(tmp_path_factory.mktemp("changed")))
    gate = os.path.join(path, "templates", "release-gate.yml")
    with open(gate, encoding="utf-8") as text:
        changed = text.read().replace('      default: ""\n---',
                                      "      default: models/digits/release/next.json\n---")
    with open(gate, "w", encoding="utf-8") as out:
        out.write(changed)
    support.git(path, "commit", "-q", "-am", "gate against another record")
    bare = os.path.join(offline.server, support.COMPONENT_PROJECT + ".git")
    support.git(path, "push", "-q", bare, "HEAD:refs/heads/main")
    pipeline = support.preview_documents(offline.preview(path))
    assert pipeline["modelship-release-gate"]["variables"]["MODELSHIP_RELEASE_RECORD"] == \
        "models/digits/release/next.json"


@pytest.mark.parametrize("tag", ["1.2.0", "10.0.3"])
def test_semver_tag_releases_the_components(own, tag):
    offline, path = own
    jobs = offline.jobs(path, *tag_pipeline(tag))
    assert jobs.get("release-components") == "on_success"


@pytest.mark.parametrize("tag", ["v1.2.0", "1.2", "nightly", "1.2.0-rc1"])
def test_other_tags_release_nothing(own, tag):
    offline, path = own
    assert "release-components" not in offline.jobs(path, *tag_pipeline(tag))


def test_release_needs_a_digest_pinned_release_image(own):
    offline, path = own
    args = tag_pipeline("1.2.0")
    args[-1] = "MODELSHIP_RELEASE_CLI_IMAGE=registry.example/release-cli:latest"
    assert "release-components" not in offline.jobs(path, *args)


def test_own_pipeline_dependency_chain_is_valid(own):
    offline, path = own
    offline.gcl(path, "--validate-dependency-chain", *tag_pipeline("1.2.0"))
