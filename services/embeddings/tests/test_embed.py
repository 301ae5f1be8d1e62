"""What the embeddings service must do, with the real model behind the real runtime
(serving.testing.HandlerClient): the behaviour users rely on, edge cases included."""

import array
import math
import struct

import pytest

from serving import binary_data
from serving.testing import HandlerClient
from services.embeddings.handler import MAX_CHARS, EmbeddingsHandler

DIMENSION = 384
INFER = "/v2/models/minilm/infer"


@pytest.fixture(name="client", scope="module")
def fixture_client():
    """The service with the operating point's model, result caches off (every text is
    computed)."""
    with HandlerClient(EmbeddingsHandler, env={"MODELSHIP_CACHE": "off"}) as client:
        yield client


def _embed(client, texts):
    response = client.post("/v1/embed", {"texts": texts})
    assert response.status == 200, response.json()
    doc = response.json()
    assert doc["dimension"] == DIMENSION and len(doc["embeddings"]) == len(texts)
    assert doc["model"] == {"name": "minilm", "version": client.handler.version}
    return doc["embeddings"]


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b))


def _unit(vector):
    assert len(vector) == DIMENSION and all(math.isfinite(v) for v in vector)
    assert abs(math.sqrt(sum(v * v for v in vector)) - 1.0) < 1e-5


def test_every_text_gets_a_unit_vector_and_the_model_version(client):
    for vector in _embed(client, ["A man is playing a guitar.", "Das Wetter ist schön."]):
        _unit(vector)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(client):
    text, paraphrase, unrelated = _embed(client, [
        "The cat is sleeping on the sofa.",
        "A cat naps on the couch.",
        "Interest rates rose again this quarter."])
    assert _cos(text, paraphrase) > _cos(text, unrelated) + 0.3


def test_empty_and_whitespace_only_texts_are_the_empty_text(client):
    empty, spaces, mixed = _embed(client, ["", "   ", "\t\n  "])
    _unit(empty)
    assert empty == spaces == mixed


def test_a_long_text_is_read_up_to_the_models_limit(client):
    long_text = "The river runs past the old mill and under the stone bridge. " * 160
    assert len(long_text) >= 9_600
    head, longer = _embed(client, [long_text, long_text + " And then it reaches the sea."])
    _unit(head)
    # The model reads the first 256 tokens: what comes after does not change the vector.
    assert head == longer


def test_non_latin_scripts_and_emoji_get_distinct_unit_vectors(client):
    texts = ["猫がソファで寝ている。", "Кошка спит на диване.", "القط نائم على الأريكة",
             "🐱💤🛋️", "👩🏽‍🚀 to the 🌕!"]
    vectors = _embed(client, texts)
    for vector in vectors:
        _unit(vector)
    assert len({tuple(v) for v in vectors}) == len(texts)


def test_a_thousand_texts_in_one_request(client):
    texts = [f"Sentence number {i} is about topic {i % 17}." for i in range(1000)]
    vectors = _embed(client, texts)
    assert len(vectors) == 1000
    assert vectors[3] != vectors[4]


def test_duplicates_get_the_same_vector(client):
    first, other, again = _embed(client, ["same text", "other text", "same text"])
    assert first == again != other


def test_a_texts_vector_does_not_depend_on_its_batch(client):
    text = "Bit for bit, whatever else is in the batch."
    (alone,) = _embed(client, [text])
    batch = _embed(client, ["short", text, "a much longer sentence " * 40, "x"])
    assert batch[1] == alone


def test_oip_bytes_in_fp32_out(client):
    response = client.post(INFER, {"inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [2], "data": ["one", "two"]}]})
    assert response.status == 200, response.json()
    (output,) = response.json()["outputs"]
    assert output["name"] == "embedding" and output["shape"] == [2, DIMENSION]
    assert output["data"][:DIMENSION] == _embed(client, ["one"])[0]


def test_oip_binary_texts_and_binary_vectors(client):
    raw = binary_data.encode("BYTES", ["une phrase en français"])
    header = (b'{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],'
              b'"parameters":{"binary_data_size":%d}}],'
              b'"parameters":{"binary_data_output":true}}' % len(raw))
    response = client.post(INFER, body=header + raw, headers={
        "inference-header-content-length": str(len(header))})
    assert response.status == 200
    length = int(dict(response.headers)["inference-header-content-length"])
    values = struct.unpack(f"<{DIMENSION}f", response.body[length:])
    expected = array.array("f", _embed(client, ["une phrase en français"])[0])
    assert values == tuple(expected)


@pytest.mark.parametrize("body, message", [
    ({}, "'texts' is missing"),
    ({"texts": []}, "non-empty array"),
    ({"texts": "just a string"}, "non-empty array of strings"),
    ({"texts": ["ok", 7]}, "texts[1] must be a string"),
    ({"texts": ["x"] * 1025}, "at most 1024"),
    ({"texts": ["x" * (MAX_CHARS + 1)]}, f"at most {MAX_CHARS}"),
    ({"texts": ["ok"], "normalize": False}, "'normalize'"),
])
def test_bad_requests_say_what_is_wrong(client, body, message):
    response = client.post("/v1/embed", body)
    assert response.status == 400
    assert message in response.json()["error"]


def test_a_lone_surrogate_is_refused_not_crashed_on(client):
    response = client.post("/v1/embed", body=b'{"texts": ["ok \\ud800 no"]}')
    assert response.status == 400
    assert "error" in response.json()
