"""The HTTP API from outside: the real server on loopback, as a client sees it.

Proves: the Open Inference Protocol and task routes answer with the documented
shapes, every response carries the versions, responses conform to the
checked-in OpenAPI document and results schema, and bad requests get a 4xx
with a JSON error that says what is wrong.
"""

import asyncio
import gzip
import json
import math
import pathlib

import jsonschema
import pytest

from serving import app
from services.digits.tests import harness

HERE = pathlib.Path(__file__).resolve().parent.parent
OPENAPI = json.loads((HERE / "openapi.json").read_text(encoding="utf-8"))
RESULTS_SCHEMA = json.loads((HERE / "results.schema.json").read_text(encoding="utf-8"))
SHA256_HEX = 64

IMAGES, LABELS = harness.images(8)


def _conforms(response, path, method):
    """Checks a response against the OpenAPI document (status, headers, body schema)."""
    operation = OPENAPI["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status))
    assert documented is not None, f"{response.status} not documented for {method} {path}"
    for name, ref in documented.get("headers", {}).items():
        header = OPENAPI["components"]["headers"][ref["$ref"].rsplit("/", 1)[1]]
        if header.get("required"):
            assert name.lower() in response.headers, f"{name} missing: {response.headers}"
    content = documented["content"]
    media = response.headers["content-type"].split(";")[0]
    assert media in content, f"content-type {media} not documented"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": OPENAPI["components"]}
        jsonschema.validate(response.json(), schema)


def _assert_versions(server, response):
    assert response.headers["x-api-version"] == "1.0"
    assert response.headers["x-model-version"] == server.version


@pytest.fixture(name="api", scope="module")
def fixture_api(server):
    """The shared server, with the model version it reports."""
    server.version = server.get("/v2/health/ready").headers["x-model-version"]
    return server


def test_health_live_and_ready_answer_200_with_json_bodies(api):
    for path, field in (("/v2/health/live", "live"), ("/v2/health/ready", "ready")):
        response = api.get(path)
        assert response.status == 200
        assert response.json()[field] is True
        _assert_versions(api, response)
        _conforms(response, path, "GET")


def test_model_version_is_the_artifact_sha256(api):
    assert len(api.version) == SHA256_HEX
    body = api.get("/v2/models/digits").json()
    assert body["versions"] == [api.version]
    assert body["model_version"] == api.version


def test_server_and_model_metadata_have_the_oip_shapes(api):
    server = api.get("/v2")
    assert server.status == 200
    assert {"name", "version", "extensions"} <= set(server.json())
    _conforms(server, "/v2", "GET")
    for path in ("/v2/models/digits", f"/v2/models/digits/versions/{api.version}"):
        response = api.get(path)
        assert response.status == 200, response
        body = response.json()
        assert body["name"] == "digits"
        assert body["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
        assert [o["name"] for o in body["outputs"]] == ["probabilities", "label"]
        _assert_versions(api, response)
    _conforms(response, "/v2/models/{model_name}/versions/{model_version}", "GET")


def test_model_ready_answers_200_for_the_served_model_and_version(api):
    for path in ("/v2/models/digits/ready", f"/v2/models/digits/versions/{api.version}/ready"):
        response = api.get(path)
        assert response.status == 200
        assert response.json()["ready"] is True
    _conforms(response, "/v2/models/{model_name}/versions/{model_version}/ready", "GET")


def test_unknown_model_or_version_is_404_with_an_error(api):
    for path in ("/v2/models/cats", "/v2/models/cats/ready", "/v2/models/digits/versions/0/ready",
                 f"/v2/models/digits/versions/{'0' * 64}"):
        response = api.get(path)
        assert response.status == 404, path
        assert "cats" in response.json()["error"] or "version" in response.json()["error"]
        _assert_versions(api, response)
    response = api.post("/v2/models/cats/infer", _infer_body(IMAGES[:1]))
    assert response.status == 404
    assert "unknown model 'cats'" in response.json()["error"]


def _infer_body(images, datatype="INT32", nested=False, **extra):
    data = images if nested else [v for image in images for v in image]
    return {"inputs": [{"name": "pixels", "shape": [len(images), 64], "datatype": datatype,
                        "data": data}], **extra}


def test_oip_infer_returns_probabilities_and_labels_for_flat_data(api):
    response = api.post("/v2/models/digits/infer", _infer_body(IMAGES, id="req-1"))
    assert response.status == 200, response
    _conforms(response, "/v2/models/{model_name}/infer", "POST")
    _assert_versions(api, response)
    body = response.json()
    assert body["model_name"] == "digits"
    assert body["model_version"] == api.version
    assert body["id"] == "req-1"
    proba, label = body["outputs"]
    assert proba["name"] == "probabilities" and proba["datatype"] == "FP32"
    assert proba["shape"] == [len(IMAGES), 10]
    rows = [proba["data"][i * 10:(i + 1) * 10] for i in range(len(IMAGES))]
    assert all(math.isclose(sum(row), 1.0, abs_tol=1e-4) for row in rows)
    assert label == {"name": "label", "datatype": "BYTES", "shape": [len(IMAGES)],
                     "data": [str(max(range(10), key=row.__getitem__)) for row in rows]}
    assert sum(a == b for a, b in zip(label["data"], LABELS)) >= len(LABELS) - 1


def test_oip_infer_accepts_nested_data_and_image_shapes_alike(api):
    flat = api.post("/v2/models/digits/infer", _infer_body(IMAGES[:2]))
    nested = api.post("/v2/models/digits/infer", _infer_body(IMAGES[:2], nested=True))
    images_8x8 = [[image[r * 8:(r + 1) * 8] for r in range(8)] for image in IMAGES[:2]]
    as_images = api.post("/v2/models/digits/infer", {"inputs": [{
        "name": "pixels", "shape": [2, 8, 8], "datatype": "FP32", "data": images_8x8}]})
    outputs = [r.json()["outputs"] for r in (flat, nested, as_images)]
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("datatype", ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                                      "INT32", "INT64", "FP16", "FP32", "FP64"])
def test_oip_infer_accepts_every_numeric_datatype(api, datatype):
    response = api.post("/v2/models/digits/infer", _infer_body(IMAGES[:1], datatype=datatype))
    assert response.status == 200, response


def test_oip_infer_returns_only_the_requested_output(api):
    response = api.post("/v2/models/digits/infer",
                        _infer_body(IMAGES[:1], outputs=[{"name": "label"}]))
    assert [o["name"] for o in response.json()["outputs"]] == ["label"]


def test_oip_infer_on_the_versioned_route_answers_like_the_unversioned_one(api):
    path = f"/v2/models/digits/versions/{api.version}/infer"
    versioned = api.post(path, _infer_body(IMAGES[:1], id="x"))
    plain = api.post("/v2/models/digits/infer", _infer_body(IMAGES[:1], id="x"))
    assert versioned.status == 200
    assert versioned.json()["outputs"] == plain.json()["outputs"]


def test_predict_returns_top_k_labels_conforming_to_the_results_schema(api):
    response = api.post("/v1/predict", {"instances": IMAGES, "top_k": 3})
    assert response.status == 200, response
    body = response.json()
    jsonschema.validate(body, RESULTS_SCHEMA)
    _conforms(response, "/v1/predict", "POST")
    _assert_versions(api, response)
    assert body["format"] == "1.0"
    assert body["model"]["version"] == api.version
    assert len(body["predictions"]) == len(IMAGES)
    for prediction in body["predictions"]:
        ranked = prediction["top_k"]
        assert len(ranked) == 3
        assert prediction["label"] == ranked[0]["label"]
        assert [r["probability"] for r in ranked] == sorted(
            (r["probability"] for r in ranked), reverse=True)


def test_predict_defaults_to_top_3_and_takes_8x8_images(api):
    image = [IMAGES[0][r * 8:(r + 1) * 8] for r in range(8)]
    nested = api.post("/v1/predict", {"instances": [image]}).json()
    flat = api.post("/v1/predict", {"instances": [IMAGES[0]]}).json()
    assert len(nested["predictions"][0]["top_k"]) == 3
    assert nested["predictions"] == flat["predictions"]


def test_served_openapi_and_results_schema_equal_the_checked_in_files(api):
    for path, name in (("/openapi.json", "openapi.json"),
                       ("/v1/results.schema.json", "results.schema.json")):
        served = api.get(path)
        assert served.status == 200
        checked_in = (HERE / name).read_bytes()
        assert served.body == checked_in, (
            f"the served {path} differs from services/digits/{name}; if the change is "
            "intended, run `bazel run //services/digits:contract.update` and review the diff.")


def test_checked_in_openapi_is_a_valid_openapi_3_document():
    assert OPENAPI["openapi"].startswith("3.0")
    jsonschema.Draft202012Validator.check_schema(RESULTS_SCHEMA)
    for schema in OPENAPI["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(schema)


BAD_PREDICT_BODIES = [
    (b"{not json", "not valid JSON"),
    (b'{"instances": [[NaN]]}', "NaN"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"instances": []}', "non-empty array"),
    (b'{"images": [[0]]}', "unknown field 'images'"),
    (b'{"instances": [[1, 2, 3]]}', "shape [3]"),
    (b'{"instances": [[1, 2], [1]]}', "instances[0] must be"),
    (json.dumps({"instances": [[0] * 63 + [17]]}).encode(), "pixel 63 is 17.0"),
    (json.dumps({"instances": [[0] * 63 + [-1]]}).encode(), "pixel 63 is -1.0"),
    (json.dumps({"instances": [[0] * 63 + [1e308]]}).encode(), "levels from 0"),
    (json.dumps({"instances": [[0] * 63 + ["3"]]}).encode(), "a string"),
    (json.dumps({"instances": [[0] * 63 + [True]]}).encode(), "a boolean"),
    (json.dumps({"instances": [[0] * 64], "top_k": 11}).encode(), "'top_k' must be"),
    (json.dumps({"instances": [[0] * 64], "top_k": "3"}).encode(), "'top_k' must be"),
    (json.dumps({"instances": [[0] * 64] * 1025}).encode(), "at most 1024"),
    (b'{"instances": [[[[[[1]]]]]]}', "nested"),
    (json.dumps({"instances": [[0] * 64, 0]}).encode(), "instances[1] must be"),
    (b'{"instances": [[1e999]]}', "not valid JSON"),
    (b"", "empty"),
]


@pytest.mark.parametrize("body,message", BAD_PREDICT_BODIES)
def test_bad_predict_requests_are_400_with_an_error_saying_what_is_wrong(api, body, message):
    response = api.post("/v1/predict", body, headers={"Content-Type": "application/json"})
    assert response.status == 400, response
    assert message in response.json()["error"]
    _conforms(response, "/v1/predict", "POST")
    _assert_versions(api, response)


BAD_INFER_TENSORS = [
    ({"datatype": "BOOL"}, "datatype BOOL is not accepted"),
    ({"datatype": "BYTES"}, "datatype BYTES is not accepted"),
    ({"datatype": "FP8"}, "not an OIP datatype"),
    ({"name": "image"}, "unknown input"),
    ({"shape": [1, 63]}, "shape [1, 63] is not accepted"),
    ({"shape": [2, 64]}, "has 64 values; shape [2, 64] needs 128"),
    ({"shape": [1, -64]}, "non-negative integers"),
    ({"data": [0.5] * 64, "datatype": "INT32"}, "not an integer"),
    ({"data": [None] * 64}, "null"),
    ({"data": "0" * 64}, "must be an array"),
    ({"parameters": {"binary_data_size": 256}}, "binary tensor data"),
]


@pytest.mark.parametrize("change,message", BAD_INFER_TENSORS)
def test_bad_infer_tensors_are_400_with_an_error_saying_what_is_wrong(api, change, message):
    tensor = {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": IMAGES[0],
              **change}
    response = api.post("/v2/models/digits/infer", {"inputs": [tensor]})
    assert response.status == 400, response
    assert message in response.json()["error"]
    _conforms(response, "/v2/models/{model_name}/infer", "POST")


def test_infer_with_two_inputs_or_an_unknown_output_is_400(api):
    tensor = {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": IMAGES[0]}
    two = api.post("/v2/models/digits/infer", {"inputs": [tensor, tensor]})
    assert two.status == 400 and "exactly one tensor" in two.json()["error"]
    unknown = api.post("/v2/models/digits/infer",
                       {"inputs": [tensor], "outputs": [{"name": "logits"}]})
    assert unknown.status == 400 and "'logits' is not an output" in unknown.json()["error"]


def test_a_body_declared_as_another_type_is_415(api):
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "application/octet-stream"):
        for path in ("/v1/predict", "/v2/models/digits/infer"):
            response = api.post(path, json.dumps({"instances": IMAGES}).encode(),
                                headers={"Content-Type": content_type})
            assert response.status == 415, (content_type, path)
            assert "application/json" in response.json()["error"]
            _conforms(response, path.replace("digits", "{model_name}"), "POST")


def test_a_body_without_content_type_is_read_as_json(api):
    # Triton's and KServe's clients send infer requests without a Content-Type.
    predict = api.post("/v1/predict", json.dumps({"instances": IMAGES[:2]}).encode())
    assert predict.status == 200, predict
    assert [p["label"] for p in predict.json()["predictions"]] == LABELS[:2]
    infer = api.post("/v2/models/digits/infer", json.dumps(_infer_body(IMAGES[:2])).encode())
    assert infer.status == 200, infer
    assert infer.json()["outputs"][1]["data"] == LABELS[:2]
    not_json = api.post("/v1/predict", b"instances=1")
    assert not_json.status == 400 and "not valid JSON" in not_json.json()["error"]


# Found by an independent schemathesis run (issue 13): each gave a 500.
FUZZ_REGRESSIONS = [
    ("/v2/models/digits/infer",
     {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": {}, "data": IMAGES[0]}]},
     "inputs[0].datatype must be a string, got an object ({})"),
    ("/v2/models/digits/infer",
     {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": ["FP32"],
                  "data": IMAGES[0]}]},
     "inputs[0].datatype must be a string"),
    ("/v1/predict", {"instances": [IMAGES[0]], "top_k": 1e300},
     "'top_k' must be an integer from 1 to 10, got a number (1e+300)"),
    ("/v1/predict", {"instances": [IMAGES[0]], "top_k": 10 ** 30},
     "'top_k' must be an integer from 1 to 10"),
    ("/v2/models/digits/infer",
     {"inputs": [{"name": "pixels", "shape": [0], "datatype": "FP32", "data": []}]},
     "inputs[0].shape [0] is not accepted"),
]


@pytest.mark.parametrize("path,body,message", FUZZ_REGRESSIONS)
def test_fuzz_findings_are_400_with_a_message_not_500(api, path, body, message):
    response = api.post(path, body)
    assert response.status == 400, response
    assert message in response.json()["error"]
    _conforms(response, path.replace("digits", "{model_name}"), "POST")


def test_the_contract_accepts_no_shape_the_server_refuses():
    schemas = OPENAPI["components"]["schemas"]
    tensors = schemas["InferRequest"]["properties"]["inputs"]["items"]["oneOf"]
    assert len(tensors) == 2
    for ref in tensors:
        shape = schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"]["shape"]
        schema = {**shape, "components": OPENAPI["components"]}
        for refused in ([0], [0, 64], [1], [1, 64, 1, 1]):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(refused, schema)
        for accepted in ([1, 64], [1024, 64], [3, 8, 8]):
            jsonschema.validate(accepted, schema)


def test_a_body_over_the_limit_is_413_before_it_is_parsed(start_server):
    small = start_server(MODELSHIP_MAX_BODY_BYTES="1000")
    response = small.post("/v1/predict", {"instances": IMAGES})
    assert response.status == 413
    assert "limit is 1000 bytes" in response.json()["error"]
    assert small.post("/v1/predict", {"instances": IMAGES[:1]}).status == 200


def test_wrong_method_is_405_with_allow_and_unknown_route_is_404(api):
    response = api.get("/v1/predict")
    assert response.status == 405
    assert response.headers["allow"] == "POST"
    assert "GET is not allowed" in response.json()["error"]
    missing = api.get("/v3/anything")
    assert missing.status == 404
    assert "no route" in missing.json()["error"]


def test_metrics_count_requests_batches_cache_and_model_version(api):
    before = api.metric("modelship_http_requests_total", route="predict", method="POST",
                        status="200")
    assert api.post("/v1/predict", {"instances": IMAGES[:2]}).status == 200
    assert api.metric("modelship_http_requests_total", route="predict", method="POST",
                      status="200") == before + 1
    text = api.get("/metrics").body.decode()
    assert 'modelship_http_request_duration_seconds_bucket{le="0.005",method="POST",' \
           'route="predict",status="200"}' in text
    assert "modelship_batch_size_rows_count" in text
    assert "modelship_queue_depth_rows" in text
    assert 'modelship_cache_hits_total{backend="memory"}' in text
    assert 'modelship_cache_misses_total{backend="memory"}' in text
    assert api.metric("modelship_model_info", name="digits", version=api.version) == 1.0
    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    _assert_versions(api, response)


def test_a_repeated_image_is_answered_from_the_cache(api):
    image = [[min(16, (i * 7) % 17) for i in range(64)]]
    hits = api.metric("modelship_cache_hits_total", backend="memory")
    first = api.post("/v1/predict", {"instances": image}).json()
    second = api.post("/v1/predict", {"instances": image}).json()
    assert first == second
    assert api.metric("modelship_cache_hits_total", backend="memory") == hits + 1


def test_server_and_model_metadata_carry_the_api_version_of_the_contract(api):
    version = OPENAPI["info"]["version"]
    server = api.get("/v2")
    assert server.json()["version"] == version
    assert server.json()["api_version"] == version
    assert server.headers["x-api-version"] == version
    for path in ("/v2/models/digits", f"/v2/models/digits/versions/{api.version}",
                 "/v2/models/digits/ready"):
        response = api.get(path)
        assert response.json()["api_version"] == version, path
        assert response.headers["x-api-version"] == version, path


def test_docs_are_the_html_reference_of_this_api_sent_compressed(api):
    packed = api.get("/docs", headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.status == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["content-type"] == "text/html; charset=utf-8"
    assert packed.headers["vary"] == "accept-encoding"
    _assert_versions(api, packed)
    page = gzip.decompress(packed.body).decode()
    assert f"<title>{OPENAPI['info']['title']} {OPENAPI['info']['version']} reference" in page
    for path in OPENAPI["paths"]:
        assert json.dumps(path) in page, f"{path} missing from the docs"
    plain = api.get("/docs", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.body.decode() == page
    assert len(packed.body) < 512 * 1024  # what the image ships for docs


def test_docs_of_a_server_built_without_them_are_404_with_an_error(tmp_path):
    service = app.Service(harness.config({}), docs_file=str(tmp_path / "docs.html.gz"))
    response = asyncio.run(service.handle("GET", "/docs", lambda name: None, None))
    assert response.status == 404
    assert "built without its API docs" in json.loads(response.body)["error"]
