"""The embeddings production image, run as a user would run it, from the outside.

Builds the production image of services/embeddings (all-MiniLM-L6-v2) exactly as
`bazel run //services/embeddings:image` does, loads it into a private dockerd and
checks what issue 15 asks of it: at most its size budget (100 MB) uncompressed,
the model alone in the last large layer (only the SBOM's small one after it),
ready within 2 s of `docker run` (median of several starts), and embeddings
bit-identical to those of the encoder Bazel builds on this machine (what the
test stage runs).
"""

import array
import hashlib
import json
import shutil
import statistics
import time

import pytest

from inference.text.encoder import SentenceEncoder
from models.minilm import paths
from tests.image import support
from tools.image import labels as image_labels

SPEC = support.spec(support.EMBEDDINGS_SPEC)
IMAGE = SPEC["image_name"]
SIZE_BUDGET_BYTES = SPEC["size_budget_mb"] * 1_000_000
# Issue 15: start to ready in at most 2 s.
READY_WITHIN_S = 2.0
STARTS = 5
# Short, long, accented, non-Latin, emoji, empty: each row's vector must not depend on
# the batch it is in (the service batches by tokens; the test stage embeds them alone).
SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an instrument.",
    "Les élèves apprennent le français à l'école.",
    "東京は日本の首都です。",
    "Ein Hund läuft über die Wiese 🐕",
    "",
    "The quick brown fox jumps over the lazy dog. " * 40,
]


@pytest.fixture(name="built", scope="module")
def fixture_built(tmp_path_factory):
    """(report, OCI archive path) of a production build of the embeddings image."""
    out = str(tmp_path_factory.mktemp("dist"))
    storage = str(tmp_path_factory.mktemp("storage"))  # private: never touch others'
    try:
        report = support.build_production(out, ["--storage", storage],
                                          spec_path=support.EMBEDDINGS_SPEC)
    finally:
        shutil.rmtree(storage, ignore_errors=True)  # half a GB; the archive is in `out`
    return report, f"{out}/{IMAGE}.oci.tar"


@pytest.fixture(name="docker", scope="module")
def fixture_docker(built, tmp_path_factory):
    """A private dockerd with the built image loaded as <image>:smoke."""
    with support.dockerd() as daemon:
        daemon.load_oci_archive(built[1], f"{IMAGE}:smoke", str(tmp_path_factory.mktemp("load")))
        yield daemon


def _start(docker, name):
    """Runs the image (read-only root) as container `name`; returns (port, seconds from
    `docker run` until GET /v2/health/ready answers 200)."""
    port = support.free_port()
    began = time.monotonic()
    docker.docker("run", "--detach", "--network", "host", "--read-only",
                  "--env", f"MODELSHIP_PORT={port}", "--env", "MODELSHIP_HOST=127.0.0.1",
                  "--name", name, f"{IMAGE}:smoke")
    deadline = began + 60
    while time.monotonic() < deadline:
        try:
            if support.http(port, "GET", "/v2/health/ready", timeout=1)[0] == 200:
                return port, time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.01)
    print(docker.docker("logs", name, check=False).stdout)
    raise AssertionError(f"{name} did not become ready within 60 s")


@pytest.fixture(name="starts", scope="module")
def fixture_starts(docker):
    """Seconds to ready of STARTS fresh containers, one at a time."""
    times = []
    for i in range(STARTS):
        name = f"start{i}"
        times.append(_start(docker, name)[1])
        docker.docker("rm", "--force", name)
    print(f"start to ready (s): {[f'{t:.2f}' for t in times]}, "
          f"median {statistics.median(times):.2f}")
    return times


@pytest.fixture(name="container", scope="module")
def fixture_container(docker, starts):
    """The production image serving on a free port (after the start timings)."""
    del starts  # measured first, on an idle machine
    port, _ = _start(docker, "smoke")
    yield port
    docker.docker("rm", "--force", "smoke", check=False)


def test_image_fits_the_size_budget(built):
    report = built[0]
    print("layers (uncompressed bytes):",
          [layer["uncompressed_size"] for layer in report["layers"]])
    assert report["uncompressed_size"] <= SIZE_BUDGET_BYTES, (
        f"production image is {report['uncompressed_size'] / 1e6:.1f} MB uncompressed, "
        f"over the {SIZE_BUDGET_BYTES / 1e6:.0f} MB budget: {report['layers']}")


def test_model_is_the_last_large_layer_alone(built):
    report = built[0]
    with open(paths.model_path(), "rb") as model:
        model_bytes = len(model.read())
    assert "/opt/modelship/model/" in report["history"][-2]
    # The artifact plus the tar headers of its file and folders, nothing else.
    layer = report["layers"][-2]["uncompressed_size"]
    assert model_bytes <= layer < model_bytes + 64 * 1024, (layer, model_bytes)
    # After it only the SBOM (it names the commit, so it changes with every commit).
    assert "/var/lib/db/sbom/" in report["history"][-1]
    assert report["layers"][-1]["uncompressed_size"] < 1_000_000


def test_container_is_ready_within_two_seconds_of_its_start(starts):
    assert statistics.median(starts) <= READY_WITHIN_S, starts


def test_labels_name_the_model_its_metric_and_served_name(built):
    labels = built[0]["labels"]
    assert labels[image_labels.SERVED_NAME] == "minilm"
    assert labels[image_labels.MODEL_NAME] == "all-MiniLM-L6-v2"
    with open(paths.model_path(), "rb") as model:
        assert labels[image_labels.MODEL_VERSION] == hashlib.sha256(model.read()).hexdigest()
    name, _, value = labels[image_labels.MODEL_METRIC].partition("=")
    assert name == "paraphrase_top1" and 0.9 < float(value) <= 1, labels
    assert not image_labels.type_problems(labels) and not image_labels.undeclared(labels)


def _bits(vectors):
    """The float32 bit patterns of rows of numbers."""
    return [array.array("f", row).tobytes() for row in vectors]


@pytest.fixture(name="expected", scope="module")
def fixture_expected():
    """The Bazel-built encoder's embeddings of SENTENCES, one text at a time."""
    encoder = SentenceEncoder.load(paths.model_path())
    return _bits(encoder.embed([text])[0] for text in SENTENCES)


def test_task_embeddings_are_bit_identical_to_the_bazel_built_encoder(container, expected):
    status, body = support.http(container, "POST", "/v1/embed", {"texts": SENTENCES})
    assert status == 200, body
    assert len(body["embeddings"]) == len(SENTENCES)
    # JSON numbers from float32 round-trip exactly (shortest repr of the double).
    assert _bits(body["embeddings"]) == expected


def test_oip_embeddings_are_bit_identical_to_the_bazel_built_encoder(container, expected):
    request = {"inputs": [{"name": "text", "shape": [len(SENTENCES)], "datatype": "BYTES",
                           "data": SENTENCES}]}
    status, body = support.http(container, "POST", "/v2/models/minilm/infer", request)
    assert status == 200, body
    output = body["outputs"][0]
    assert output["datatype"] == "FP32" and output["shape"] == [len(SENTENCES), 384]
    flat = output["data"]
    if flat and isinstance(flat[0], list):  # nested is as valid as flat
        flat = [value for row in flat for value in row]
    rows = [flat[i * 384:(i + 1) * 384] for i in range(len(SENTENCES))]
    assert _bits(rows) == expected


def test_container_serves_the_api_docs_and_version(container, built):
    with open("services/embeddings/openapi.json", encoding="utf-8") as text:
        api_version = json.load(text)["info"]["version"]
    assert built[0]["labels"][image_labels.API_VERSION] == api_version
    status, server = support.http(container, "GET", "/v2")
    assert status == 200 and server["version"] == api_version, server
    status, _ = support.http(container, "GET", "/docs")
    assert status == 200
