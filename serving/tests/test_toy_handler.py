"""The runtime with a handler that needs no model (toy_handler.py), through HandlerClient:
OIP and the task endpoint, batching and its settings, the cache, the contract."""

import dataclasses

import pytest

from serving import contract, errors, protocol
from serving.tests.toy_handler import OipOnlyHandler, ToyHandler
from serving.testing import HandlerClient


@pytest.fixture(name="client")
def fixture_client():
    """The toy handler, loaded, without a cache (every row reaches it)."""
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "off"}) as client:
        yield client


def test_ready_after_load_and_warm_up_with_the_handlers_name_and_version(client):
    assert client.get("/v2/health/ready").status == 200
    metadata = client.get("/v2/models/toy").json()
    assert metadata["name"] == "toy" and metadata["versions"] == [client.handler.version]
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
    assert metadata["labels"] == ["low", "high"]
    # Warm-up: one full batch and one row, before ready.
    assert client.handler.batches[:2] == [16, 1]


def test_oip_infer_answers_each_row(client):
    result = client.infer([[1, 2], [9, 9]])
    outputs = {o["name"]: o for o in result["outputs"]}
    assert outputs["label"]["data"] == ["low", "high"]
    assert outputs["probabilities"]["data"] == [1.0, 0.0, 0.0, 1.0]


def test_values_outside_the_spec_are_refused_before_the_handler_sees_them(client):
    seen = len(client.handler.batches)
    response = client.post("/v2/models/toy/infer", {"inputs": [
        {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 11]}]})
    assert response.status == 400
    assert "value 1 is 11.0" in response.json()["error"]
    assert len(client.handler.batches) == seen


def test_the_task_endpoint_reads_and_answers_through_the_handler(client):
    response = client.post("/v1/classify", {"rows": [[1, 2], [10, 10]]})
    assert response.status == 200
    assert response.json() == {"labels": ["low", "high"]}
    bad = client.post("/v1/classify", {"rows": [[1, 2]], "extra": 1})
    assert bad.status == 400 and "'extra'" in bad.json()["error"]


def test_concurrent_requests_share_batches_of_at_most_max_batch_size():
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "off",
                                        "MODELSHIP_MAX_BATCH_SIZE": "2"}) as client:
        warm_up = len(client.handler.batches)
        responses = client.post_many("/v1/classify", [{"rows": [[i, 0]]} for i in range(6)])
        assert [r.status for r in responses] == [200] * 6
        batches = client.handler.batches[warm_up:]
        assert sum(batches) == 6 and max(batches) == 2


def test_the_cache_answers_a_repeated_row_without_the_handler():
    # The row cache alone (the whole-answer cache would answer the repeat first).
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "memory",
                                        "MODELSHIP_RESPONSE_CACHE_BYTES": "0"}) as client:
        client.infer([[3, 4]])
        seen = len(client.handler.batches)
        assert client.infer([[3, 4]])["outputs"][1]["data"] == ["low"]
        assert len(client.handler.batches) == seen
        assert b'modelship_cache_hits_total{backend="memory"} 1.0' in client.get("/metrics").body


def test_the_model_path_and_name_come_from_configuration(tmp_path):
    threshold = tmp_path / "threshold.txt"
    threshold.write_text("2")
    with HandlerClient(ToyHandler, model_path=threshold,
                       env={"MODELSHIP_MODEL_NAME": "other"}) as client:
        assert client.get("/v2/models/other/ready").status == 200
        assert client.get("/v2/models/toy/ready").status == 404
        assert client.infer([[1, 2]])["outputs"][1]["data"] == ["high"]


def test_a_model_that_is_not_the_expected_version_does_not_start():
    client = HandlerClient(ToyHandler, env={"MODELSHIP_EXPECTED_VERSION": "0" * 64})
    with pytest.raises(errors.ModelError, match="0{64} was expected"):
        client.start()
    assert client.get("/v2/health/ready").status == 503
    client.close()


def test_the_contract_describes_the_task_and_the_oip_routes(client):
    document = client.openapi()
    assert document["info"]["description"].startswith("Classifies pairs of numbers")
    assert document["paths"]["/v1/classify"]["post"]["operationId"] == "classify"
    assert "/v1/predict" not in document["paths"]
    assert "/v2/models/{model_name}/infer" in document["paths"]
    assert "ClassifyRequest" in document["components"]["schemas"]
    # The task route is labelled "predict" in the metrics, whatever its path.
    client.post("/v1/classify", {"rows": [[1, 2]]})
    assert b'route="predict"' in client.get("/metrics").body


def test_a_handler_without_a_task_is_served_over_oip_only():
    with HandlerClient(OipOnlyHandler) as client:
        assert client.infer([[1, 2]])["model_name"] == "oip-only"
        assert client.post("/v1/classify", {"rows": [[1, 2]]}).status == 404
        document = client.openapi()
        assert "/v1/classify" not in document["paths"]
        assert [t["name"] for t in document["tags"]] == ["oip", "service"]


def _refuse_parsing(monkeypatch):
    """From here on, a request that gets parsed fails (500, "unexpected error")."""
    def parse(*args):
        raise AssertionError(f"parsed again: {args[:1]}")
    monkeypatch.setattr(protocol, "parse_json", parse)


def test_a_repeated_request_gets_the_same_answer_without_parsing_or_the_handler(monkeypatch):
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "memory"}) as client:
        doc = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                                       "data": [1, 2, 9, 9]}]}
        first = client.post("/v2/models/toy/infer", doc)
        task = client.post("/v1/classify", {"rows": [[3, 3]]})
        assert first.status == 200 and task.status == 200
        seen = len(client.handler.batches)
        _refuse_parsing(monkeypatch)
        again = client.post("/v2/models/toy/infer", doc)
        assert (again.status, again.headers, again.body) == \
            (first.status, first.headers, first.body)
        assert client.post("/v1/classify", {"rows": [[3, 3]]}).body == task.body
        assert len(client.handler.batches) == seen
        # Its images count as cache hits, as the row cache would count them.
        assert b'modelship_cache_hits_total{backend="memory"} 3.0' in \
            client.get("/metrics").body


def test_the_answer_cache_keys_on_the_route_and_every_byte_of_the_body():
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "memory"}) as client:
        doc = {"id": "a", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32",
                                      "data": [1, 2]}]}
        assert client.post("/v2/models/toy/infer", doc).json()["id"] == "a"
        # Another id: another answer (its id echoed), not the kept one.
        assert client.post("/v2/models/toy/infer", dict(doc, id="b")).json()["id"] == "b"
        # The same body under the versioned path is its own route.
        versioned = f"/v2/models/toy/versions/{client.handler.version}/infer"
        assert client.post(versioned, doc).status == 200
        kept = client.service._responses  # pylint: disable=protected-access
        assert len(kept) == 3
        # A refused request is never kept.
        bad = dict(doc, inputs=[dict(doc["inputs"][0], data=[1, 11])])
        assert client.post("/v2/models/toy/infer", bad).status == 400
        assert client.post("/v2/models/toy/infer", bad).status == 400
        assert len(kept) == 3


@pytest.mark.parametrize("env", [{"MODELSHIP_CACHE": "off"},
                                 {"MODELSHIP_RESPONSE_CACHE_BYTES": "0"}])
def test_without_the_answer_cache_every_request_is_parsed(monkeypatch, env):
    with HandlerClient(ToyHandler, env=env) as client:
        doc = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
        assert client.post("/v2/models/toy/infer", doc).status == 200
        assert client.service._responses is None  # pylint: disable=protected-access
        _refuse_parsing(monkeypatch)
        assert client.post("/v2/models/toy/infer", doc).status == 500


class VersionedToy(ToyHandler):
    """The toy model with an API version of its own."""

    def contract(self):
        return dataclasses.replace(super().contract(), api_version="2.3")


def test_each_model_declares_its_own_api_version():
    with HandlerClient(VersionedToy) as client:
        metadata = client.get("/v2")
        assert metadata.headers["x-api-version"] == "2.3"
        assert metadata.json()["version"] == "2.3"
        assert client.openapi()["info"]["version"] == "2.3"
        assert client.infer([[1, 2]])["parameters"]["api_version"] == "2.3"
        assert client.post("/v1/classify", {"rows": [[1]]}).headers["x-api-version"] == "2.3"
    # Without one, a model gets the runtime's default.
    with HandlerClient(ToyHandler) as client:
        assert client.get("/v2").headers["x-api-version"] == contract.API_VERSION


def test_a_repeat_of_a_request_without_an_id_gets_an_id_of_its_own(monkeypatch):
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "memory"}) as client:
        doc = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
        first = client.post("/v2/models/toy/infer", doc).json()
        _refuse_parsing(monkeypatch)  # the repeats come from the answer cache
        again = [client.post("/v2/models/toy/infer", doc).json() for _ in range(3)]
    ids = [first["id"]] + [answer["id"] for answer in again]
    assert len(set(ids)) == 4 and all(len(i) == 32 for i in ids)
    assert all(dict(answer, id=None) == dict(first, id=None) for answer in again)
