"""Triton's HTTP client (`tritonclient.http`), the most used Open Inference
Protocol client, against the real server.

Proves: its default `infer()` (no Content-Type; tensors in and out with the
binary tensor data extension) and its JSON mode work for every datatype the
model takes, in both image shapes, and give the same results as `/v1/predict`
for the same images; metadata, liveness and readiness calls work, with and
without the model version; an unknown model, an unknown version and a wrong
shape raise InferenceServerException with a 4xx status and the server's
message.
"""

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from services.digits.tests import harness

IMAGES, LABELS = harness.images(12, seed=13)
NUMPY_TYPES = {"UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
               "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
               "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
OUTPUTS = ("probabilities", "label")


@pytest.fixture(name="client", scope="module")
def fixture_client(server):
    """A tritonclient.http client of the shared server."""
    client = httpclient.InferenceServerClient(url=f"{harness.HOST}:{server.port}")
    yield client
    client.close()


@pytest.fixture(name="expected", scope="module")
def fixture_expected(server):
    """/v1/predict's answer for IMAGES: (labels, probabilities as an (N, 10) float32 array)."""
    response = server.post("/v1/predict", {"instances": IMAGES, "top_k": 10})
    assert response.status == 200, response
    predictions = response.json()["predictions"]
    proba = np.array([[dict((r["label"], r["probability"]) for r in p["top_k"])[str(c)]
                       for c in range(10)] for p in predictions], dtype=np.float32)
    return [p["label"] for p in predictions], proba


def _input(datatype, binary, image_shape=(64,)):
    pixels = np.array(IMAGES, dtype=NUMPY_TYPES[datatype]).reshape((len(IMAGES),) + image_shape)
    tensor = httpclient.InferInput("pixels", list(pixels.shape), datatype)
    tensor.set_data_from_numpy(pixels, binary_data=binary)
    return tensor


def _check(result, expected, binary_outputs):
    labels, proba = expected
    got = result.as_numpy("probabilities")
    assert got.dtype == np.float32 and got.shape == (len(IMAGES), 10)
    # Binary outputs are float32 bytes; JSON ones are the model's floats: both round
    # to the float32 of /v1/predict's value.
    np.testing.assert_array_equal(got, proba)
    assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")] \
        == labels == LABELS
    sent = {o["name"]: o for o in result.get_response()["outputs"]}
    for name in OUTPUTS:
        assert ("data" not in sent[name]) == binary_outputs, sent[name]


@pytest.mark.parametrize("datatype", sorted(NUMPY_TYPES))
def test_default_infer_sends_and_gets_binary_tensors_for_every_datatype(
        client, expected, datatype):
    result = client.infer("digits", [_input(datatype, binary=True)], request_id="r1")
    _check(result, expected, binary_outputs=True)
    assert result.get_response()["id"] == "r1"


@pytest.mark.parametrize("datatype", sorted(NUMPY_TYPES))
def test_json_only_infer_works_for_every_datatype(client, expected, datatype):
    outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]
    result = client.infer("digits", [_input(datatype, binary=False)], outputs=outputs)
    _check(result, expected, binary_outputs=False)


def test_binary_input_with_json_outputs_and_8x8_images(client, expected):
    outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]
    result = client.infer("digits", [_input("FP32", binary=True, image_shape=(8, 8))],
                          outputs=outputs)
    _check(result, expected, binary_outputs=False)


def test_one_output_in_binary_the_other_in_json(client, expected):
    outputs = [httpclient.InferRequestedOutput("label", binary_data=False),
               httpclient.InferRequestedOutput("probabilities", binary_data=True)]
    result = client.infer("digits", [_input("UINT8", binary=False)], outputs=outputs)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), expected[1])
    assert list(result.as_numpy("label")) == expected[0]
    sent = result.get_response()["outputs"]
    assert [o["name"] for o in sent] == ["label", "probabilities"]
    assert "data" in sent[0] and sent[1]["parameters"]["binary_data_size"] == 4 * 10 * 12


def test_infer_by_model_version(client, server, expected):
    version = server.get("/v2/health/ready").headers["x-model-version"]
    result = client.infer("digits", [_input("INT64", binary=True)], model_version=version)
    _check(result, expected, binary_outputs=True)
    assert result.get_response()["model_version"] == version


def test_metadata_liveness_and_readiness(client, server):
    version = server.get("/v2/health/ready").headers["x-model-version"]
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits") and client.is_model_ready("digits", version)
    assert not client.is_model_ready("cats")
    for metadata in (client.get_model_metadata("digits"),
                     client.get_model_metadata("digits", model_version=version)):
        assert metadata["name"] == "digits" and metadata["versions"] == [version]
        assert metadata["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
        assert [o["name"] for o in metadata["outputs"]] == list(OUTPUTS)
    assert client.get_server_metadata()["name"] == "modelship-digits"


def _refused(call):
    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value


def test_unknown_model_or_version_and_wrong_shape_raise_with_a_4xx(client):
    unknown = _refused(lambda: client.infer("cats", [_input("FP32", binary=True)]))
    assert unknown.status() == "404" and "unknown model 'cats'" in unknown.message()
    version = _refused(lambda: client.get_model_metadata("digits", model_version="0" * 64))
    assert version.status() == "404" and "has no version" in version.message()
    missing = _refused(lambda: client.get_model_metadata("cats"))
    assert missing.status() == "404"
    for binary in (True, False):
        pixels = np.zeros((2, 63), dtype=np.float32)
        tensor = httpclient.InferInput("pixels", [2, 63], "FP32")
        tensor.set_data_from_numpy(pixels, binary_data=binary)
        shape = _refused(lambda tensor=tensor: client.infer("digits", [tensor]))
        assert shape.status() == "400" and "shape [2, 63] is not accepted" in shape.message()
    levels = np.full((1, 64), 17, dtype=np.uint8)
    tensor = httpclient.InferInput("pixels", [1, 64], "UINT8")
    tensor.set_data_from_numpy(levels)
    out_of_range = _refused(lambda: client.infer("digits", [tensor]))
    assert out_of_range.status() == "400" and "pixel 0 is 17.0" in out_of_range.message()
    nan = np.zeros((1, 64), dtype=np.float32)
    nan[0, 5] = np.nan
    tensor = httpclient.InferInput("pixels", [1, 64], "FP32")
    tensor.set_data_from_numpy(nan)
    not_a_number = _refused(lambda: client.infer("digits", [tensor]))
    assert not_a_number.status() == "400" and "pixel 5 is nan" in not_a_number.message()
