"""The runtime serving a text encoder (TextSpec, toy_text_handler.py): OIP BYTES in and
FP32 vectors out (JSON and binary), errors, the cache by text, batching by cost."""

import struct

import pytest

from serving import binary_data
from serving.testing import HandlerClient
from serving.tests.toy_text_handler import ToyTextHandler

INFER = "/v2/models/toytext/infer"


@pytest.fixture(name="client")
def fixture_client():
    """The toy text encoder, loaded, without a cache."""
    with HandlerClient(ToyTextHandler, env={"MODELSHIP_CACHE": "off"}) as client:
        yield client


def _texts(texts, shape=None, **extra):
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": shape or [len(texts)],
                        "data": texts}], **extra}


def test_metadata_says_bytes_in_and_vectors_out(client):
    metadata = client.get("/v2/models/toytext").json()
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 4]}]


def test_infer_answers_one_vector_per_text_in_order(client):
    response = client.post(INFER, _texts(["a 1", "", "hello world 42"]))
    assert response.status == 200, response.json()
    (output,) = response.json()["outputs"]
    assert output["name"] == "embedding" and output["datatype"] == "FP32"
    assert output["shape"] == [3, 4]
    assert output["data"] == [3, 2, 1, 1, 0, 0, 0, 0, 14, 3, 3, 2]


def test_texts_may_come_one_per_row(client):
    response = client.post(INFER, _texts([["ab"], ["c"]], shape=[2, 1]))
    assert response.status == 200
    assert response.json()["outputs"][0]["data"][::4] == [2, 1]


def test_binary_texts_in_and_binary_vectors_out(client):
    texts = ["ünïcode ok", "two words"]
    raw = binary_data.encode("BYTES", texts)
    header = (b'{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],'
              b'"parameters":{"binary_data_size":%d}}],'
              b'"parameters":{"binary_data_output":true}}' % len(raw))
    response = client.post(INFER, body=header + raw, headers={
        "inference-header-content-length": str(len(header))})
    assert response.status == 200
    length = int(dict(response.headers)["inference-header-content-length"])
    values = struct.unpack("<8f", response.body[length:])
    assert values == (10, 2, 3, 0, 9, 2, 2, 0)


@pytest.mark.parametrize("tensor, message", [
    ({"datatype": "FP32"}, "datatype must be BYTES"),
    ({"data": ["ok", 3]}, "data[1] must be a string, got a number (3)"),
    ({"data": ["x" * 51, "ok"]}, "data[0] has 51 characters; at most 50"),
    ({"shape": [2, 2]}, "must be [N] or [N, 1]"),
    ({"shape": [3]}, "has 2 texts; shape [3] needs 3"),
    ({"name": "words"}, "unknown input"),
])
def test_bad_texts_are_refused_with_what_is_wrong(client, tensor, message):
    body = _texts(["ok", "fine"])
    body["inputs"][0].update(tensor)
    response = client.post(INFER, body)
    assert response.status == 400
    assert message in response.json()["error"]


def test_too_many_texts_are_refused(client):
    response = client.post(INFER, _texts(["x"] * 1025))
    assert response.status == 400 and "at most 1024" in response.json()["error"]


def test_binary_texts_that_are_not_utf8_are_refused(client):
    raw = struct.pack("<I", 2) + b"\xff\xfe"
    header = (b'{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],'
              b'"parameters":{"binary_data_size":%d}}]}' % len(raw))
    response = client.post(INFER, body=header + raw, headers={
        "inference-header-content-length": str(len(header))})
    assert response.status == 400 and "not UTF-8" in response.json()["error"]


def test_batches_are_bounded_by_cost_not_only_rows():
    with HandlerClient(ToyTextHandler, env={"MODELSHIP_CACHE": "off"}) as client:
        seen = len(client.handler.batches)
        # Each request costs 3 + 2 = 5: two fit in a batch of cost 12, three do not.
        responses = client.post_many("/v1/embed", [{"texts": ["one two three"]}] * 6)
        assert [r.status for r in responses] == [200] * 6
        batches = client.handler.batches[seen:]
        assert sum(rows for rows, _ in batches) == 6
        assert all(cost <= 12 for _, cost in batches), batches
        assert max(rows for rows, _ in batches) == 2


def test_a_request_over_the_cost_bound_still_runs_alone():
    with HandlerClient(ToyTextHandler, env={"MODELSHIP_CACHE": "off"}) as client:
        response = client.post("/v1/embed", {"texts": ["a b c d e f g h i j k l m n"]})
        assert response.status == 200
        assert client.handler.batches[-1] == (1, 16)


def test_the_cost_bound_comes_from_the_environment_when_set():
    with HandlerClient(ToyTextHandler, env={"MODELSHIP_CACHE": "off",
                                            "MODELSHIP_MAX_BATCH_COST": "100"}) as client:
        seen = len(client.handler.batches)
        client.post_many("/v1/embed", [{"texts": ["one two three"]}] * 6)
        assert max(rows for rows, _ in client.handler.batches[seen:]) > 2


def test_repeated_texts_come_from_the_cache_and_are_never_prepared_again():
    with HandlerClient(ToyTextHandler, env={"MODELSHIP_RESPONSE_CACHE_BYTES": "0"}) as client:
        first = client.post("/v1/embed", {"texts": ["cached text", "other"]})
        prepared = client.handler.prepared
        again = client.post("/v1/embed", {"texts": ["other", "cached text", "new one"]})
        assert client.handler.prepared == prepared + 1  # only "new one"
        assert first.json()["embeddings"] == [again.json()["embeddings"][1],
                                              again.json()["embeddings"][0]]


def test_the_contract_describes_bytes_in_and_the_embedding_out(client):
    doc = client.openapi()
    tensor = doc["components"]["schemas"]["BytesTensor"]
    assert tensor["properties"]["datatype"]["enum"] == ["BYTES"]
    output = doc["components"]["schemas"]["InferResponse"]["properties"]["outputs"]["items"]
    assert output["properties"]["name"]["enum"] == ["embedding"]
    example = doc["paths"][INFER.replace("toytext", "{model_name}")]["post"]["requestBody"]
    assert example["content"]["application/json"]["example"]["inputs"][0]["data"] == [
        "hello world"]
    assert doc["info"]["version"] == "2.1"
