"""The runtime with a handler that needs no model (toy_handler.py), through HandlerClient:
OIP and the task endpoint, batching and its settings, the cache, the contract."""

import pytest

from serving import errors
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
    with HandlerClient(ToyHandler, env={"MODELSHIP_CACHE": "memory"}) as client:
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
