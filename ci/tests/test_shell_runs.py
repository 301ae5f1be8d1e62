"""The components' jobs, run for real with gitlab-ci-local's shell executor.

A consumer project (a clean clone of this workspace at HEAD whose
.gitlab-ci.yml includes the full pipeline component, fetched offline) runs
its pipeline, for the digits image and, through the same components included
a second time, the embeddings image: the lint, test and production image builds (buildah, private
storage under the checkout), the reproducibility check against the shipped
archive, the model release gate, the API gate, publish to a real registry on
loopback (digest handed on by a dotenv report), the manual promote (validate,
then move `stable`), the canary and rollout with the deploy tool's local
target (private dockerd, nginx). A second release goes through a real canary
step under live traffic, the manual rollback returns to the first release,
and a model the gate refuses fails its pipeline before anything is published.
The project has release keys (ci/tests/release_keys.py): publish signs in both
formats and attests (SBOM, provenance, model signature), the reproducibility
job attests its rebuild, and validate, promote, the canary, the rollout and the
rollback verify before they move anything; no key or password reaches a log.
The embeddings image goes the same way (but for the reproducibility check,
which the digits image covers for both): first release, a canary step of a
second one under live traffic, the rollout, the rollback.

Jobs call tools/ci/modelship-tool with MODELSHIP_TOOL_DIRECT=1: the Python
entry points run straight from the checkout (a Bazel nested in this test
would deadlock on the output base), with this test's runfiles standing in for
what `bazel run` provides (the built model, the third-party packages).
"""

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from ci.tests import release_keys, support
from tools.containers import runtime
from tools.release import server

REPOSITORY = "team/digits"
# One "0" of the digits data set, as an OIP infer request.
PIXELS = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
          0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
          0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
INFER = json.dumps({"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32",
                                "data": PIXELS}]}).encode()

EMBEDDINGS_REPOSITORY = "team/embeddings"
EMBED = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                "data": ["A man is playing a guitar."]}]}).encode()

CONSUMER = """\
include:
  - component: $CI_SERVER_FQDN/platform/modelship/pipeline@1.0.0
    inputs:
      registry: {registry}
      repository: {repository}
      api_releases: services/digits/api/releases
      api_contract: services/digits
      deploy_target: local
      deploy_args: --state-dir {state} --port {port}
      mode: timed
      steps: [50]
      step_interval: 8
  - component: $CI_SERVER_FQDN/platform/modelship/pipeline@1.0.0
    inputs:
      job_prefix: embeddings
      release_target: //services/embeddings:image.release
      reproducible: false
      registry: {registry}
      repository: {embeddings_repository}
      api_releases: services/embeddings/api/releases
      api_contract: services/embeddings
      deploy_target: local
      deploy_args: --state-dir {embeddings_state} --port {embeddings_port}
      mode: timed
      steps: [50]
      step_interval: 8
"""


def workspace():
    """The source tree this test was built from (WORKSPACE in runfiles links back)."""
    return os.path.dirname(os.path.realpath("WORKSPACE"))


class Traffic:
    """Steady OIP infer requests to the deploy front door, in a thread."""

    def __init__(self, port, model="digits", body=INFER):
        self.port = port
        self.model = model
        self.body = body
        self.statuses = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("POST", f"/v2/models/{self.model}/infer", self.body,
                             {"Content-Type": "application/json"})
                self.statuses.append(conn.getresponse().status)
                conn.close()
            except OSError:
                self._stop.wait(0.5)  # the front door is not up yet
            self._stop.wait(0.03)


class Consumer:
    """The consumer checkout, its pipeline, and what a pipeline run needs."""

    def __init__(self, root, registry):
        self.keys = release_keys.ReleaseKeys(os.path.join(root, "keys"))
        self.offline = support.Offline(os.path.join(root, "offline"))
        self.path = os.path.join(root, "digits")
        self.state = os.path.join(root, "deploy-state")
        self.port = runtime.free_port()
        self.embeddings_state = os.path.join(root, "embeddings-deploy-state")
        self.embeddings_port = runtime.free_port()
        self.registry = registry
        subprocess.run(["git", "clone", "--quiet", "--shared", workspace(), self.path],
                       check=True)
        support.git(self.path, "remote", "remove", "origin")
        with open(os.path.join(self.path, ".gitlab-ci.yml"), "w", encoding="utf-8") as out:
            out.write(CONSUMER.format(
                registry=registry.address, repository=REPOSITORY, state=self.state,
                port=self.port, embeddings_repository=EMBEDDINGS_REPOSITORY,
                embeddings_state=self.embeddings_state, embeddings_port=self.embeddings_port))
        # The consumer's own project URL, committed: the images' source label.
        with open(os.path.join(self.path, "tools", "image", "source-url.txt"), "w",
                  encoding="utf-8") as out:
            out.write(f"https://{support.HOST}/{REPOSITORY}\n")
        self.commit("consumer pipeline", "-a")
        support.git(self.path, "remote", "add", "origin", support.CONSUMER_REMOTE)
        support.git(self.path, "update-ref", "refs/remotes/origin/main", "HEAD")
        support.git(self.path, "symbolic-ref", "refs/remotes/origin/HEAD",
                    "refs/remotes/origin/main")

    def commit(self, message, *args):
        """Commits on main and moves origin/main along (a push, as far as CI can tell)."""
        support.git(self.path, "checkout", "-q", "-B", "main")
        support.git(self.path, "commit", "-q", "--allow-empty", "-m", message, *args)
        if "origin" in support.git(self.path, "remote"):
            support.git(self.path, "update-ref", "refs/remotes/origin/main", "HEAD")

    def run(self, *args):
        """One gitlab-ci-local run with the shell executor; (exit status, log)."""
        env = {
            "MODELSHIP_TOOL_DIRECT": "1",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "RUNFILES_DIR": support.runfiles_root(),
            # What `bazel run //:image` would pass (tools/ci/modelship-tool).
            "MODELSHIP_IMAGE_SPEC": "modelship/services/digits/image.spec",
            "MODELSHIP_REGISTRY_RETRIES": "3",
            "MODELSHIP_REGISTRY_BACKOFF_S": "0.2",
            **self.keys.env(),
        }
        proc = self.offline.gcl(self.path, "--force-shell-executor", "--concurrency", "1",
                                *support.PROTECTED, *args, env=env, check=False)
        log = proc.stdout + proc.stderr
        for secret in self.keys.secrets():
            assert secret not in log, "a key password reached a job log"
        return proc.returncode, log

    def deploy_status(self, state=None):
        """The deploy tool's status of the local target (default: the digits one's state
        folder), as a dict."""
        proc = subprocess.run(
            [sys.executable, "tools/deploy/main.py", "--target", "local", "--state-dir",
             state or self.state, "status"], cwd=self.path, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=self.path + os.pathsep + os.pathsep.join(sys.path)),
            check=False)
        return json.loads(proc.stdout)

    def down(self):
        """Stops what the local deploy target started."""
        for state in (self.state, self.embeddings_state):
            subprocess.run([sys.executable, "tools/deploy/main.py", "--target", "local",
                            "--state-dir", state, "down"], cwd=self.path,
                           env=dict(os.environ, PYTHONPATH=self.path + os.pathsep
                                    + os.pathsep.join(sys.path)),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        self.keys.stop()
        storage = os.path.join(self.path, ".modelship", "buildah")
        subprocess.run(["buildah", "--root", os.path.join(storage, "root"), "--runroot",
                        os.path.join(storage, "run"), "rmi", "--all", "--force"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["umount", "-R", os.path.join(storage, "root", "overlay")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def job_passed(log, job):
    """Did gitlab-ci-local report the job as passed?"""
    return any(line.strip().startswith("PASS") and line.split()[-1] == job
               for line in log.splitlines())


@pytest.fixture(scope="module", name="consumer")
def fixture_consumer(tmp_path_factory):
    """A consumer project next to a real registry; everything stopped afterwards."""
    registry = server.Registry(str(tmp_path_factory.mktemp("registry")))
    registry.start()
    project = Consumer(str(tmp_path_factory.mktemp("consumer")), registry)
    try:
        yield project
    finally:
        project.down()
        registry.stop()


@pytest.fixture(scope="module", name="first_release")
def fixture_first_release(consumer):
    """The whole pipeline of the first release, promote included; returns its log."""
    status, log = consumer.run("--manual", "modelship-promote-stable",
                               "--manual", "embeddings-promote-stable")
    assert status == 0, log[-8000:]
    return log


def test_pipeline_builds_gates_publishes_promotes_and_deploys(consumer, first_release):
    for job in ("modelship-image-lint", "modelship-image-test", "modelship-image-production",
                "modelship-reproducible", "modelship-release-gate", "modelship-api-breaking",
                "modelship-publish", "modelship-promote-stable",
                "modelship-canary-production-timed", "modelship-rollout-production"):
        assert job_passed(first_release, job), f"{job} did not pass:\n{first_release[-6000:]}"
    assert "repro: identical" in first_release
    assert "ACCEPTED" in first_release
    with open(os.path.join(consumer.path, "dist", "modelship-digits.json"),
              encoding="utf-8") as text:
        built = json.load(text)
    sha = support.git(consumer.path, "rev-parse", "HEAD").strip()
    assert built["labels"]["org.opencontainers.image.revision"] == sha
    assert built["labels"]["org.opencontainers.image.source"] == \
        "https://gitlab.example.com/team/digits"
    # SOURCE_DATE_EPOCH was the commit time.
    epoch = int(support.git(consumer.path, "log", "-1", "--format=%ct").strip())
    assert built["labels"]["org.opencontainers.image.created"] == \
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    # The digest went by dotenv from publish to promote and the deploy jobs.
    assert f"RELEASE_DIGEST={built['digest']}" in first_release
    tag = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                          f"docker://{consumer.registry.address}/{REPOSITORY}:stable"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    assert tag == built["digest"]
    assert consumer.deploy_status()["tracks"]["stable"]["digest"] == built["digest"]
    # Signed in both formats, attested, and checked before the promote and the deploy.
    hexdigest = built["digest"].split(":", 1)[1]
    tags = registry_tags(consumer)
    assert f"sha256-{hexdigest}.sig" in tags and f"sha256-{hexdigest}.att" in tags
    assert os.path.isfile(os.path.join(consumer.keys.staging, f"{REPOSITORY}@sha256={hexdigest}",
                                       "signature-1"))
    assert "PASS  signatures: reproducibility attestation" in first_release
    assert f"verified {consumer.registry.address}/{REPOSITORY}@{built['digest']}" \
        in first_release
    assert verify(consumer, built["digest"]) == 0


def test_second_release_goes_through_a_gated_canary_then_rolls_back(consumer, first_release):
    assert first_release
    before = consumer.deploy_status()["tracks"]["stable"]["digest"]
    consumer.commit("second release")
    # Published without its reproducibility check: promote refuses it and moves nothing.
    status, log = consumer.run("modelship-image-production", "modelship-publish",
                               "modelship-promote-stable", "--manual", "modelship-promote-stable")
    assert status != 0 and not job_passed(log, "modelship-promote-stable")
    assert "FAIL  signatures: reproducibility attestation" in log, log[-6000:]
    assert "INVALID sha256:" in log
    assert registry_digest(consumer, "stable") == before
    with Traffic(consumer.port) as traffic:
        # The reproducibility job attests the same digest; now it goes through.
        status, log = consumer.run("modelship-reproducible", "modelship-promote-stable",
                                   "modelship-canary-production-timed",
                                   "--manual", "modelship-promote-stable")
    assert status == 0, log[-8000:]
    # The step was judged on live metrics and passed; the canary stays at its
    # last weight until the rollout.
    assert '"decision": "promote"' in log, log[-6000:]
    assert '"result": "passed"' in log
    running = consumer.deploy_status()["tracks"]
    second = running["canary"]["digest"]
    assert running["stable"]["digest"] == before and second != before
    assert registry_digest(consumer, "stable") == second  # the manual promote ran
    history = registry_digest(consumer, "release-history")

    # A rollback while the canary runs aborts the canary, and only that: the
    # stable track, the registry's tag and its history stay as they are.
    with Traffic(consumer.port) as traffic:
        status, log = consumer.run("modelship-rollback-production",
                                   "--manual", "modelship-rollback-production")
    assert status == 0, log[-8000:]
    assert "aborting it (stable track and 'stable' tag unchanged)" in log
    tracks = consumer.deploy_status()["tracks"]
    assert tracks["canary"] is None
    assert tracks["stable"]["digest"] == before
    assert registry_digest(consumer, "stable") == second
    assert registry_digest(consumer, "release-history") == history
    assert traffic.statuses and all(code == 200 for code in traffic.statuses[-20:])

    # The release goes out for real this time: canary, then the rollout.
    with Traffic(consumer.port) as traffic:
        status, log = consumer.run("modelship-canary-production-timed",
                                   "modelship-rollout-production")
    assert status == 0, log[-8000:]
    assert '"result": "passed"' in log
    assert consumer.deploy_status()["tracks"]["stable"]["digest"] == second
    assert traffic.statuses and all(code == 200 for code in traffic.statuses[-20:])

    # With no canary running, the rollback returns production to the first
    # release and the registry's tag follows.
    status, log = consumer.run("modelship-rollback-production",
                               "--manual", "modelship-rollback-production")
    assert status == 0, log[-8000:]
    assert consumer.deploy_status()["tracks"]["stable"]["digest"] == before
    assert registry_digest(consumer, "stable") == before


def test_the_embeddings_image_goes_through_the_same_components(consumer, first_release):
    for job in ("embeddings-image-lint", "embeddings-image-test", "embeddings-image-production",
                "embeddings-release-gate", "embeddings-api-breaking", "embeddings-publish",
                "embeddings-promote-stable", "embeddings-canary-production-timed",
                "embeddings-rollout-production"):
        assert job_passed(first_release, job), f"{job} did not pass:\n{first_release[-6000:]}"
    assert "embeddings-reproducible" not in first_release  # reproducible: false
    with open(os.path.join(consumer.path, "dist", "modelship-embeddings.json"),
              encoding="utf-8") as text:
        built = json.load(text)
    assert built["labels"]["io.modelship.model.served-name"] == "minilm"
    assert f"RELEASE_DIGEST={built['digest']}" in first_release
    first = built["digest"]
    assert registry_digest(consumer, "stable", EMBEDDINGS_REPOSITORY) == first
    # reproducible: false waives the reproducibility attestation; the signatures and the
    # other attestations still count.
    assert verify(consumer, first, EMBEDDINGS_REPOSITORY,
                  MODELSHIP_REQUIRE_REPRODUCIBLE="0") == 0
    assert verify(consumer, first, EMBEDDINGS_REPOSITORY) == 1
    status = consumer.deploy_status(consumer.embeddings_state)
    assert status["tracks"]["stable"]["digest"] == first

    # A second release: a canary step judged on live traffic, the rollout, the rollback.
    consumer.commit("second embeddings release")
    with Traffic(consumer.embeddings_port, "minilm", EMBED) as traffic:
        status, log = consumer.run("embeddings-image-production", "embeddings-publish",
                                   "embeddings-promote-stable",
                                   "embeddings-canary-production-timed",
                                   "embeddings-rollout-production",
                                   "--manual", "embeddings-promote-stable")
    assert status == 0, log[-8000:]
    assert '"decision": "promote"' in log, log[-6000:]
    second = consumer.deploy_status(consumer.embeddings_state)["tracks"]["stable"]["digest"]
    assert second != first and registry_digest(consumer, "stable",
                                               EMBEDDINGS_REPOSITORY) == second
    assert traffic.statuses and all(code == 200 for code in traffic.statuses[-20:])
    status, log = consumer.run("embeddings-rollback-production",
                               "--manual", "embeddings-rollback-production")
    assert status == 0, log[-8000:]
    assert consumer.deploy_status(consumer.embeddings_state)["tracks"]["stable"]["digest"] \
        == first
    assert registry_digest(consumer, "stable", EMBEDDINGS_REPOSITORY) == first


def test_a_refused_model_fails_the_pipeline_before_publish(consumer, first_release):
    assert first_release
    record = os.path.join(consumer.path, "models", "digits", "release", "current.json")
    with open(record, encoding="utf-8") as text:
        current = json.load(text)
    # A release record no candidate can beat: the gate must refuse this commit's model.
    for name in list(current["metrics"]):
        if "accuracy" in name:
            current["metrics"][name] = 1.0
    current["headline_value"] = 1.0
    with open(record, "w", encoding="utf-8") as out:
        json.dump(current, out, indent=2, sort_keys=True)
    consumer.commit("claim a perfect release", "-a")
    tags_before = registry_tags(consumer)
    status, log = consumer.run("modelship-release-gate", "modelship-publish")
    assert status != 0
    assert "REFUSED" in log
    assert not job_passed(log, "modelship-release-gate")
    assert not job_passed(log, "modelship-publish")
    assert registry_tags(consumer) == tags_before


def verify(consumer, digest, repository=REPOSITORY, **env):
    """Exit status of the release tool's `verify` (as an outsider runs it: the keys of
    the project, nothing else)."""
    proc = subprocess.run(
        [sys.executable, "tools/release/cli.py", "--registry", consumer.registry.address,
         "--repository", repository, "verify", "--digest", digest], cwd=consumer.path,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                 **consumer.keys.env(), **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    return proc.returncode


def registry_digest(consumer, tag, repository=REPOSITORY):
    """The digest of the manifest a tag of one of the consumer's repositories points at."""
    raw = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                          f"docker://{consumer.registry.address}/{repository}:{tag}"],
                         stdout=subprocess.PIPE, check=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def registry_tags(consumer):
    """The tags of the consumer's repository in the registry."""
    proc = subprocess.run(["skopeo", "list-tags", "--tls-verify=false",
                           f"docker://{consumer.registry.address}/{REPOSITORY}"],
                          stdout=subprocess.PIPE, text=True, check=True)
    return sorted(json.loads(proc.stdout)["Tags"])
