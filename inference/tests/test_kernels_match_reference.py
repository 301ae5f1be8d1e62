"""The Cython kernels compute the numpy reference's maths.

Tolerances: layer 1's integer accumulators must match exactly (integer
arithmetic in both). Probabilities may differ by float32 rounding, because the
two sum layer 2 in different orders and use different exp implementations: we
allow 1e-6 absolute, and the top-1 class must be the same.
"""

import numpy as np
import pytest

from inference import artifact, reference
from models.digits import paths, records

PROBABILITY_ATOL = 1e-6


@pytest.fixture(name="weights", scope="module")
def fixture_weights():
    """The built artifact's tensors."""
    return artifact.read(paths.model_path()).tensors


def _batches():
    test_images, _ = records.select(records.read(paths.dataset_path()), records.TEST)
    rng = np.random.default_rng(5)
    return {
        "test split": test_images,
        "random levels": rng.integers(0, 17, size=(500, 64)).astype(np.float64),
        "random reals": rng.uniform(0, 16, size=(500, 64)),
        "halves": rng.integers(0, 16, size=(50, 64)) + 0.5,
        "all zero": np.zeros((3, 64)),
        "all max": np.full((3, 64), 16.0),
    }


@pytest.mark.parametrize("name", sorted(_batches()))
def test_layer1_accumulators_are_exact(model, weights, name):
    x = _batches()[name]
    network = model._network  # pylint: disable=protected-access
    got = np.zeros((len(x), network.h_pad), dtype=np.int32)
    assert network.layer1_f64(x, got) == -1
    levels = np.floor(x + 0.5).astype(np.int64)
    exact = levels @ np.asarray(weights["dense1.weight"]).astype(np.int64)
    n_hidden = exact.shape[1]
    assert np.array_equal(got[:, :n_hidden], exact)
    assert not got[:, n_hidden:].any()  # padding units stay zero
    assert np.array_equal(reference.ReferenceModel(weights).layer1_accumulators(x),
                          exact.astype(np.float32))


@pytest.mark.parametrize("name", sorted(_batches()))
def test_probabilities_match_the_reference(model, weights, name):
    x = _batches()[name]
    got = model.predict_proba(x)
    expected = reference.ReferenceModel(weights).predict_proba(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=PROBABILITY_ATOL)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_float32_and_float64_inputs_give_identical_bits(model):
    x = _batches()["random reals"]
    assert np.array_equal(model.predict_proba(x.astype(np.float32)),
                          model.predict_proba(x.astype(np.float32).astype(np.float64)))


def test_strided_views_give_the_same_bits_as_contiguous_copies(model):
    x = _batches()["random reals"]
    wide = np.zeros((2 * len(x), 128))
    wide[::2, ::2] = x
    view = wide[::2, ::2]
    assert not view.flags.c_contiguous
    assert np.array_equal(model.predict_proba(view), model.predict_proba(x))
    fortran = np.asfortranarray(x)
    assert np.array_equal(model.predict_proba(fortran), model.predict_proba(x))
