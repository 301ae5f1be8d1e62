"""The example consumer workspace (examples/consumer) uses modelship as a team would.

A copy of examples/consumer, made a git repository of its own, depends on this
checkout with `local_repository` (its WORKSPACE's path rewritten to this
checkout) and, with a Bazel of its own (its own output root, so no deadlock
with the Bazel running this test):
  1. `bazel test //...` passes: its model trains at build time, its handler's
     tests pass on modelship's serving runtime;
  2. `bazel run //:image` builds its lint, test and production stages, and the
     production image is the consumer's: its handler, model and labels, and
     none of modelship's own example model;
  3. that image, run by a container runtime, serves the consumer's model under
     its own name.
"""

import json
import os
import pwd
import shutil
import subprocess
import tarfile
import time

import pytest

from examples import consumer_copy
from tools.containers import runtime

IMAGE = "flowers-team-flowers"
HANDLER = "services.flowers.handler:FlowersHandler"


@pytest.fixture(name="consumer", scope="module")
def fixture_consumer(tmp_path_factory):
    """(workspace, run): a copy of the consumer and a private Bazel to run in it."""
    if not shutil.which("bazel"):
        pytest.fail("bazel is not installed: run tools/bootstrap")
    root = tmp_path_factory.mktemp("consumer")
    workspace = str(root / "flowers")
    consumer_copy.copy_consumer(workspace)
    # The machine's own home: pip's cache (the consumer's pip repositories) and the
    # image build's cache of verified .deb files and wheels (tools/image/build.py),
    # which Bazel's test environment would otherwise point at an empty folder.
    home = pwd.getpwuid(os.getuid()).pw_dir
    env = {"PATH": os.environ["PATH"], "HOME": home, "USER": "root"}
    startup = ["bazel", f"--output_user_root={root / 'out'}", "--max_idle_secs=60"]
    timings = {}

    def run(name, *args):
        started = time.monotonic()
        proc = subprocess.run(startup + list(args), cwd=workspace, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False, timeout=1800)
        timings[name] = round(time.monotonic() - started, 1)
        # How long each step took, for whoever keeps the suite short.
        outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if outputs:
            with open(os.path.join(outputs, "timings.json"), "w", encoding="utf-8") as out:
                json.dump(timings, out, indent=2)
        return proc

    yield workspace, run
    subprocess.run(startup + ["shutdown"], cwd=workspace, env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(name="tested", scope="module")
def fixture_tested(consumer):
    """What the consumer's `bazel test //...` printed (it must pass)."""
    _, run = consumer
    proc = run("bazel test //...", "test", "//...")
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


@pytest.fixture(name="image", scope="module")
def fixture_image(consumer, tested, tmp_path_factory):
    """(report, archive) of the consumer's `bazel run //:image`."""
    del tested  # the image is built after the tests, as a team would
    workspace, run = consumer
    storage = str(tmp_path_factory.mktemp("storage"))  # never touch others' images
    try:
        proc = run("bazel run //:image", "run", "//:image", "--", "--storage", storage)
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-6000:]
    with open(os.path.join(workspace, "dist", IMAGE + ".json"), encoding="utf-8") as text:
        report = json.load(text)
    return report, os.path.join(workspace, "dist", IMAGE + ".oci.tar")


@pytest.fixture(name="container", scope="module")
def fixture_container(image, tmp_path_factory):
    """The production image in a private dockerd, read-only root filesystem, ready;
    yields its port."""
    _, archive = image
    with runtime.dockerd() as docker:
        docker.load_oci_archive(archive, f"{IMAGE}:smoke", str(tmp_path_factory.mktemp("load")))
        port = runtime.free_port()
        docker.docker("run", "--detach", "--network", "host", "--read-only",
                      "--env", f"MODELSHIP_PORT={port}", "--env", "MODELSHIP_HOST=127.0.0.1",
                      "--name", "smoke", f"{IMAGE}:smoke")
        try:
            runtime.wait_until(lambda: runtime.http(port, "GET", "/v2/health/ready")[0] == 200,
                               60, "the container to report ready")
        except AssertionError:
            print(docker.docker("logs", "smoke", check=False).stdout)
            raise
        yield port


def test_the_consumers_own_tests_pass(tested):
    assert "Executed 4 out of 4 tests: 4 tests pass" in tested, tested[-2000:]


def test_its_image_runs_its_handler_with_its_model(image):
    _, archive = image
    assert os.path.isfile(archive)
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", f"oci-archive:{archive}"], stdout=subprocess.PIPE,
        text=True, check=True).stdout)["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MODELSHIP_HANDLER"] == HANDLER
    assert env["MODELSHIP_MODEL_PATH"] == "/opt/modelship/model/flowers.model"
    assert config["Entrypoint"] == ["/usr/bin/python3", "-m", "serving"]


def test_its_labels_are_the_consumers(image):
    report, _ = image
    labels = report["labels"]
    assert labels["com.example.team"] == "flowers-team"
    assert labels["org.opencontainers.image.title"] == IMAGE
    assert labels["org.opencontainers.image.source"] == "https://example.com/flowers-team/flowers"
    assert labels["io.modelship.model.name"] == "flowers"
    assert labels["io.modelship.model.metric"].startswith("test_accuracy=")
    # Its own contract's (services/flowers/openapi.json, info.version).
    assert labels["io.modelship.api.version"] == "1.0"


def test_it_ships_modelships_runtime_and_none_of_modelships_own_model(image):
    _, archive = image
    shipped = set()
    with tarfile.open(archive) as outer:
        for member in outer:
            if member.name.startswith("blobs/sha256/") and member.isfile():
                with outer.extractfile(member) as blob:
                    try:
                        with tarfile.open(fileobj=blob) as layer:
                            shipped.update(layer.getnames())
                    except tarfile.ReadError:
                        continue  # the config and the manifest
    app = sorted(name for name in shipped if name.startswith("opt/modelship/app/"))
    assert "opt/modelship/app/services/flowers/handler.py" in app \
        or any(name.startswith("opt/modelship/app/services/flowers/") for name in app), app
    assert any(name.startswith("opt/modelship/app/serving/") for name in app), app
    assert "opt/modelship/model/flowers.model" in shipped
    assert not [name for name in app if "digits" in name], app


def test_the_container_serves_the_consumers_model_under_its_name(container, image):
    report, _ = image
    status, metadata = runtime.http(container, "GET", "/v2/models/flowers")
    assert status == 200 and metadata["name"] == "flowers", metadata
    status, body = runtime.http(container, "POST", "/v1/classify",
                                {"rows": [[50, 34, 15, 3], [67, 30, 56, 21]]})
    assert status == 200 and body == {"species": ["setosa", "virginica"]}, body
    status, body = runtime.http(container, "POST", "/v2/models/flowers/infer", {
        "inputs": [{"name": "measurements", "shape": [1, 4], "datatype": "FP32",
                    "data": [50, 34, 15, 3]}]})
    assert status == 200, body
    assert body["model_version"] == report["labels"]["io.modelship.model.version"]
