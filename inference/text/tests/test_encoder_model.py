"""The whole encoder against the float64 reference, for every candidate; the public API."""

import math

import numpy as np
import pytest

from inference import artifact, errors
from inference.text.encoder import SentenceEncoder
from inference.text.tests import encoder_fixtures as fx

CANDIDATES = ("fp32", "fp16", "int8")
# int8 weights times int8 activations: the reference keeps activations in float
# (it has no notion of them), so agreement is looser.
DYNAMIC = "int8-dynamic"
ASYM = "int8-asym"


@pytest.fixture(name="models", scope="module")
def fixture_models(tmp_path_factory):
    """{candidate: (path, version)} of the tiny random model."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for candidate in CANDIDATES + (DYNAMIC, ASYM):
        path = folder / f"{candidate}.model"
        out[candidate] = (str(path), fx.write_artifact(path, candidate))
    return out


def _sequences():
    rng = np.random.default_rng(7)
    return [fx.random_ids(rng, n) for n in (2, 3, 9, 16, 17, 33, fx.DIMS["max_positions"])]


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_embeddings_match_the_reference_of_the_stored_weights(models, candidate):
    path, _ = models[candidate]
    encoder = SentenceEncoder.load(path)
    weights = fx.dequantized(artifact.read(path).tensors)
    sequences = _sequences()
    for seq, vector in zip(sequences, encoder.embed_ids(sequences)):
        got = np.asarray(vector, dtype=np.float64)
        expected = fx.reference_embed(weights, seq)
        assert float(got @ expected) >= 0.99999
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        assert math.isclose(float(np.linalg.norm(got)), 1.0, abs_tol=1e-6)


@pytest.mark.parametrize("candidate", [DYNAMIC, ASYM])
def test_int8_activations_stay_close_to_the_reference(models, candidate):
    path, _ = models[candidate]
    encoder = SentenceEncoder.load(path)
    assert encoder.metadata["precision"]["activations"] == \
        fx.ACTIVATION_CANDIDATES[candidate]
    weights = fx.dequantized(artifact.read(path).tensors)
    sequences = _sequences()
    for seq, vector in zip(sequences, encoder.embed_ids(sequences)):
        cosine = float(np.asarray(vector, np.float64) @ fx.reference_embed(weights, seq))
        assert cosine >= 0.999


@pytest.mark.parametrize("candidate", ["fp16", "int8", DYNAMIC, ASYM])
def test_reduced_precision_stays_close_to_fp32(models, candidate):
    sequences = _sequences()
    full = SentenceEncoder.load(models["fp32"][0]).embed_ids(sequences)
    reduced = SentenceEncoder.load(models[candidate][0]).embed_ids(sequences)
    for a, b in zip(full, reduced):
        assert float(np.dot(np.asarray(a, np.float64), np.asarray(b, np.float64))) > 0.99


def test_api_describes_the_model(models):
    path, version = models["int8"]
    encoder = SentenceEncoder.load(path, expected_version=version)
    assert encoder.version == version
    assert encoder.dimension == fx.DIMS["hidden"]
    assert encoder.max_length == 32
    meta = encoder.metadata
    assert meta["version"] == version
    assert meta["precision"]["name"] == "int8"
    assert meta["architecture"]["layers"] == fx.DIMS["layers"]
    meta["model"]["name"] = "changed"
    assert encoder.metadata["model"]["name"] == "tiny-random-bert"
    assert version[:12] in repr(encoder)


def test_embed_ids_flat_is_the_rows_back_to_back(models):
    encoder = SentenceEncoder.load(models["fp32"][0])
    sequences = _sequences()
    flat = encoder.embed_ids_flat(sequences)
    rows = encoder.embed_ids(sequences)
    assert len(flat) == len(sequences) * encoder.dimension
    assert flat.tobytes() == b"".join(row.tobytes() for row in rows)


def test_empty_batch_gives_no_rows(models):
    encoder = SentenceEncoder.load(models["fp32"][0])
    assert encoder.embed_ids([]) == []
    assert len(encoder.embed_ids_flat([])) == 0


def test_tuples_and_arrays_of_ids_are_accepted(models):
    encoder = SentenceEncoder.load(models["fp32"][0])
    seq = [fx.CLS, 10, 11, fx.SEP]
    expected = encoder.embed_ids([seq])[0].tobytes()
    assert encoder.embed_ids([tuple(seq)])[0].tobytes() == expected
    assert encoder.embed_ids([np.array(seq, dtype=np.int64)])[0].tobytes() == expected


def test_a_pinned_version_refuses_another_model(models):
    with pytest.raises(errors.VersionMismatchError, match="was expected"):
        SentenceEncoder.load(models["fp32"][0], expected_version=models["int8"][1])


@pytest.mark.parametrize("sequences, message", [
    ([[]], r"sequences\[0\] has 0 tokens"),
    ([[2, 3], [2] * (fx.DIMS["max_positions"] + 1)], r"sequences\[1\] has 41 tokens; .* 1 to 40"),
    ([[2, 3], [2, fx.DIMS["vocab_size"], 3]], r"sequences\[1\]\[1\] is 120, outside"),
    ([[2, -1]], r"sequences\[0\]\[1\] is -1, outside"),
    ([[2, 1.5]], r"sequences\[0\] holds a value that is not a token id"),
    ([[2, 2 ** 40]], r"sequences\[0\] holds a value that is not a token id"),
    (["hello"], r"sequences\[0\] has type str"),
    ([5], r"sequences\[0\] has type int"),
    ("hello", "sequences has type str"),
    (None, "sequences has type NoneType"),
])
def test_bad_id_batches_are_refused_by_name(models, sequences, message):
    encoder = SentenceEncoder.load(models["fp32"][0])
    with pytest.raises(errors.InputError, match=message):
        encoder.embed_ids(sequences)


@pytest.mark.parametrize("texts, message", [
    ("one text", "texts has type str"),
    ([b"bytes"], r"texts\[0\] has type bytes"),
    (["fine", None], r"texts\[1\] has type NoneType"),
])
def test_bad_text_batches_are_refused_by_name(models, texts, message):
    encoder = SentenceEncoder.load(models["fp32"][0])
    with pytest.raises(errors.InputError, match=message):
        encoder.embed(texts)
