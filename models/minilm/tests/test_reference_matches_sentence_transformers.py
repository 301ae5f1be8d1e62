"""The numpy reference encoder reproduces sentence-transformers' own embeddings.

The fp32 artifact run by inference/text/reference.py on Hugging Face's token ids
must agree with the embeddings sentence-transformers computed (committed in
models/minilm/data/reference.npz) at cosine >= 0.9999 for every sentence: the
evaluation corpus and both sides of every paraphrase pair.
"""

import numpy as np
import pytest

from inference.text import reference
from models.minilm import paths, quality, reference_data

FLOOR = 0.9999


@pytest.fixture(name="encoder", scope="module")
def fixture_encoder():
    """The fp32 candidate's reference encoder."""
    return reference.ReferenceEncoder.load(paths.runfile(paths.candidate_model("fp32")))


@pytest.fixture(name="data", scope="module")
def fixture_data():
    """The committed reference data."""
    return reference_data.read(paths.runfile(paths.REFERENCE))


@pytest.mark.parametrize("part", reference_data.SETS)
def test_every_sentence_matches_sentence_transformers(encoder, data, part):
    ids = getattr(data, f"{part}_ids")
    expected = getattr(data, f"{part}_embeddings")
    cos = quality.cosines(encoder.embed(ids), expected)
    worst = int(np.argmin(cos))
    assert cos.min() >= FLOOR, f"{part} sentence {worst} ({len(ids[worst])} ids): {cos[worst]}"
    assert len(ids) == len(expected) > 0


def test_embeddings_are_unit_vectors_of_the_declared_dimension(encoder, data):
    vectors = encoder.embed(data.eval_ids[:8])
    assert vectors.shape == (8, encoder.header["output"]["dimension"]) == (8, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
