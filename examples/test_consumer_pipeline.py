"""The example consumer's pipeline (examples/consumer/.gitlab-ci.yml) runs, as its
team's GitLab would run it, through modelship's CI/CD components.

A copy of examples/consumer, a git repository of its own whose origin is a
GitLab project, depends on this checkout (`local_repository`); its committed
.gitlab-ci.yml includes the components `@1.0.0` by `include: component:`,
served offline from a bare repository of this checkout's templates/
(ci/tests/support.py). gitlab-ci-local runs the jobs with its shell executor
on a protected default branch, the manual promote included: the production
image build, the reproducibility check, the model release gate, the API
breaking-change gate against its released contract, publish to a
real registry on loopback, and promote (validate, then move `stable`); and
the check of the inputs it passes, against modelship's own templates. The
team's release keys are in the jobs' environment, as CI/CD variables are: the
reproducibility job attests its rebuild, publish signs in both formats and
attests, and promote verifies it all before it moves `stable`.

Every job runs modelship's tools through the consumer's own Bazel (`bazel run
@modelship//tools/ci:tool -- ...`, the components' `tool` input): the copy
holds no modelship tools. That Bazel has an output root of its own under this
test's temporary folder (`.bazelrc.user`, which the consumer ignores), so it
never waits on the Bazel running this test.
"""

import json
import os
import pwd
import shutil
import subprocess
import time

import pytest

from ci.tests import release_keys, support
from examples import consumer_copy
from tools.release import server

IMAGE = "flowers-team-flowers"
PROJECT = "flowers-team/flowers"
REMOTE = f"git@{support.HOST}:{PROJECT}.git"
REPOSITORY = f"{PROJECT}/flowers"  # the pipeline's $CI_PROJECT_PATH/flowers
JOBS = ("flowers-image-production", "flowers-reproducible", "flowers-release-gate",
        "flowers-api-breaking", "flowers-check-inputs", "flowers-publish",
        "flowers-promote-stable")


def job_passed(log, job):
    """Did gitlab-ci-local report the job as passed?"""
    return any(line.strip().startswith("PASS") and line.split()[-1] == job
               for line in log.splitlines())


def skopeo(*args):
    """skopeo's stdout (the test registry speaks plain http)."""
    return subprocess.run(["skopeo", *args], stdout=subprocess.PIPE, text=True,
                          check=True).stdout


@pytest.fixture(name="run", scope="module")
def fixture_run(tmp_path_factory):
    """(checkout, registry address, exit status, log, seconds) of one pipeline run."""
    if not shutil.which("bazel"):
        pytest.fail("bazel is not installed: run tools/bootstrap")
    root = tmp_path_factory.mktemp("pipeline")
    path = str(root / "flowers")
    consumer_copy.copy_consumer(path, remote=REMOTE)
    output_root = str(root / "bazel")
    with open(os.path.join(path, ".bazelrc.user"), "w", encoding="utf-8") as out:
        out.write(f"startup --output_user_root={output_root}\nstartup --max_idle_secs=120\n")
    offline = support.Offline(str(root / "offline"))
    registry = server.Registry(str(root / "registry"))
    registry.start()
    keys = release_keys.ReleaseKeys(str(root / "keys"))
    # The machine's cache (pip's for the consumer's pip repositories, the image
    # build's verified .deb files and wheels), not the private HOME's empty one.
    user = pwd.getpwuid(os.getuid())
    env = {"XDG_CACHE_HOME": os.path.join(user.pw_dir, ".cache"), "USER": user.pw_name,
           "MODELSHIP_REGISTRY_RETRIES": "3", "MODELSHIP_REGISTRY_BACKOFF_S": "0.2",
           **keys.env()}
    started = time.monotonic()
    try:
        proc = offline.gcl(path, "--force-shell-executor", "--concurrency", "1",
                           *support.PROTECTED, "--variable", f"CI_REGISTRY={registry.address}",
                           "--manual", "flowers-promote-stable", env=env, check=False,
                           inherit=False)
        seconds = round(time.monotonic() - started)
        outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if outputs:  # the whole log, for whoever reads a failure
            with open(os.path.join(outputs, "pipeline.log"), "w", encoding="utf-8") as out:
                out.write(proc.stdout + proc.stderr)
        log = proc.stdout + proc.stderr
        assert not [secret for secret in keys.secrets() if secret in log], \
            "a key password reached the pipeline's log"
        yield path, registry.address, proc.returncode, log, seconds
    finally:
        keys.stop()
        subprocess.run(["bazel", f"--output_user_root={output_root}", "shutdown"], cwd=path,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        storage = os.path.join(path, ".modelship", "buildah")
        subprocess.run(["buildah", "--root", os.path.join(storage, "root"), "--runroot",
                        os.path.join(storage, "run"), "rmi", "--all", "--force"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["umount", "-R", os.path.join(storage, "root", "overlay")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        registry.stop()


def test_the_pipeline_passes_build_reproducibility_gate_publish_and_promote(run):
    _, _, status, log, seconds = run
    assert status == 0, log[-8000:]
    for job in JOBS:
        assert job_passed(log, job), f"{job} did not pass:\n{log[-6000:]}"
    assert "repro: identical" in log
    assert "ACCEPTED" in log  # the flowers model's own release gate
    assert "services/flowers (API 1.0) is backward compatible" in log
    print(f"the consumer's pipeline took {seconds} s")


def test_the_jobs_ran_modelships_tools_from_the_consumers_bazel(run):
    path, _, _, log, _ = run
    assert "@modelship//tools/ci:tool" in log
    tracked = subprocess.run(["git", "-C", path, "ls-files"], stdout=subprocess.PIPE,
                             text=True, check=True).stdout.split()
    assert not [name for name in tracked if name.startswith("tools/")], tracked


def test_the_registry_holds_the_consumers_image_by_digest_and_stable_points_at_it(run):
    path, registry, _, log, _ = run
    with open(os.path.join(path, "dist", IMAGE + ".json"), encoding="utf-8") as text:
        built = json.load(text)
    digest = built["digest"]
    assert f"RELEASE_DIGEST={digest}" in log  # publish's dotenv, read by promote
    pushed = json.loads(skopeo("inspect", "--tls-verify=false",
                               f"docker://{registry}/{REPOSITORY}@{digest}"))
    assert pushed["Digest"] == digest
    stable = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                    f"docker://{registry}/{REPOSITORY}:stable").strip()
    assert stable == digest
    labels = pushed["Labels"]
    assert labels["com.example.team"] == "flowers-team"
    assert labels["org.opencontainers.image.title"] == IMAGE
    assert labels["org.opencontainers.image.source"] == "https://example.com/flowers-team/flowers"
    assert labels["io.modelship.model.name"] == "flowers"
    assert labels["io.modelship.model.served-name"] == "flowers"
    assert labels["io.modelship.api.version"] == "1.0"  # its own contract's
    revision = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                              text=True, check=True).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == revision
    # Signed and attested beside the image, checked by promote.
    tags = json.loads(skopeo("list-tags", "--tls-verify=false",
                             f"docker://{registry}/{REPOSITORY}"))["Tags"]
    hexdigest = digest.split(":", 1)[1]
    assert f"sha256-{hexdigest}.sig" in tags and f"sha256-{hexdigest}.att" in tags
    assert "PASS  signatures: cosign signature" in log
    assert "PASS  signatures: reproducibility attestation" in log
