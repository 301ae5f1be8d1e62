"""The generated client SDK against the real service, as a product team would use it.

The wheel Bazel built (//services/digits/api:client) is unpacked onto sys.path
like an installed package, and every call to the server below goes through it
and nothing else, readiness polling included: the typed models, the parsed
responses and the error bodies are what the SDK gives its users.

Proves: the SDK's version is the API version the server reports; readiness,
server metadata, the task endpoint and the Open Inference Protocol infer
call work and parse into the documented models; errors come back as the
Error model with the server's message, and wrong statuses are not mistaken
for success.
"""

import atexit
import glob
import os
import shutil
import sys
import tempfile
import time
import zipfile
from http import HTTPStatus

import httpx
import pytest

from services.digits.tests import harness

API_VERSION = "1.0"
WHEELS = glob.glob(os.path.join("services", "digits", "api", "modelship_digits_client-*.whl"))
assert len(WHEELS) == 1, f"expected one SDK wheel in runfiles, found {WHEELS}"
# Installed as pip would install a pure wheel: its files unpacked onto sys.path.
SITE = tempfile.mkdtemp(prefix="sdk-site-")
atexit.register(shutil.rmtree, SITE, True)
with zipfile.ZipFile(WHEELS[0]) as _wheel:
    _wheel.extractall(SITE)
sys.path.insert(0, SITE)

# pylint: disable=wrong-import-position
import digits_client  # noqa: E402
from digits_client.api.oip import (model_infer, model_metadata, server_live,  # noqa: E402
                                   server_metadata, server_ready)
from digits_client.api.task import predict  # noqa: E402
from digits_client.models import (Error, FloatTensor, InferRequest,  # noqa: E402
                                  InferResponse, Live, PredictRequest, PredictResults, Ready)
from digits_client.models.float_tensor_datatype import FloatTensorDatatype  # noqa: E402
from digits_client.models.float_tensor_name import FloatTensorName  # noqa: E402

# pylint: enable=wrong-import-position

IMAGES, LABELS = harness.images(6, seed=3)


def _pixels(data, rows):
    return FloatTensor(name=FloatTensorName.PIXELS, datatype=FloatTensorDatatype.FP32,
                       shape=[rows, 64], data=data)


@pytest.fixture(name="client", scope="module")
def fixture_client():
    """A digits_client.Client of a real server, ready (polled through the SDK)."""
    server = harness.Server({})
    server.start(wait_ready=False)
    deadline = time.monotonic() + harness.START_DEADLINE_S
    try:
        with digits_client.Client(base_url=f"http://{harness.HOST}:{server.port}",
                                  timeout=10.0) as client:
            while True:
                try:
                    if server_ready.sync_detailed(client=client).status_code == HTTPStatus.OK:
                        break
                except httpx.TransportError:
                    pass  # not listening yet: the SDK's transport says so
                assert server.process.poll() is None, server.output()
                assert time.monotonic() < deadline, f"not ready in time:\n{server.output()}"
                time.sleep(0.05)
            yield client
    finally:
        server.stop()


def test_wheel_version_is_the_api_version():
    assert os.path.basename(WHEELS[0]) == \
        f"modelship_digits_client-{API_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(WHEELS[0]) as wheel:
        metadata = wheel.read(f"modelship_digits_client-{API_VERSION}.dist-info/METADATA")
    assert f"Version: {API_VERSION}\n".encode() in metadata


def test_readiness_is_ready_and_carries_the_versions(client):
    ready = server_ready.sync_detailed(client=client)
    assert ready.status_code == HTTPStatus.OK
    assert isinstance(ready.parsed, Ready) and ready.parsed.ready is True
    assert ready.headers["x-api-version"] == API_VERSION
    assert len(ready.headers["x-model-version"]) == 64
    live = server_live.sync(client=client)
    assert isinstance(live, Live) and live.live is True


def test_server_and_model_metadata_report_the_api_version(client):
    server = server_metadata.sync(client=client)
    assert server.name == "modelship-digits"
    assert server.version == API_VERSION
    assert server.api_version == API_VERSION
    model = model_metadata.sync("digits", client=client)
    assert model.name == "digits"
    assert model.api_version == API_VERSION
    assert model.versions == [model.model_version]
    assert [(t.name, t.datatype, t.shape) for t in model.inputs] == [("pixels", "FP32",
                                                                      [-1, 64])]


def test_predict_returns_typed_top_k_labels(client):
    results = predict.sync(client=client, body=PredictRequest(instances=IMAGES, top_k=2))
    assert isinstance(results, PredictResults)
    assert results.api_version == API_VERSION
    assert len(results.predictions) == len(IMAGES)
    labels = [p.label.value for p in results.predictions]
    assert sum(a == b for a, b in zip(labels, LABELS)) >= len(LABELS) - 1
    for prediction in results.predictions:
        assert len(prediction.top_k) == 2
        assert prediction.top_k[0].label == prediction.label
        assert prediction.top_k[0].probability >= prediction.top_k[1].probability


def test_open_inference_protocol_infer_returns_probabilities_and_labels(client):
    flat = [float(v) for image in IMAGES for v in image]
    request = InferRequest(id="sdk-1", inputs=[_pixels(flat, len(IMAGES))])
    response = model_infer.sync_detailed("digits", client=client, body=request)
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.parsed
    assert isinstance(body, InferResponse)
    assert body.id == "sdk-1" and body.model_name == "digits"
    outputs = {o.name.value: o for o in body.outputs}
    assert outputs["probabilities"].shape == [len(IMAGES), 10]
    assert len(outputs["probabilities"].data) == len(IMAGES) * 10
    assert outputs["label"].datatype.value == "BYTES"
    assert sum(a == b for a, b in zip(outputs["label"].data, LABELS)) >= len(LABELS) - 1


def test_errors_come_back_as_the_error_model_with_the_servers_message(client):
    unknown = model_metadata.sync_detailed("no-such-model", client=client)
    assert unknown.status_code == HTTPStatus.NOT_FOUND
    assert isinstance(unknown.parsed, Error)
    assert "unknown model 'no-such-model'" in unknown.parsed.error
    too_bright = InferRequest(inputs=[_pixels([99.0] * 64, 1)])
    bad = model_infer.sync_detailed("digits", client=client, body=too_bright)
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert isinstance(bad.parsed, Error)
    assert "pixel values must be levels from 0" in bad.parsed.error
    assert bad.headers["x-api-version"] == API_VERSION
