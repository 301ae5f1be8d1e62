"""Awkward batches: each is a clear InputError or a defined result (inference/README.md)."""

import re

import numpy as np
import pytest

from inference import errors


def _digit():
    rng = np.random.default_rng(3)
    return rng.integers(0, 17, size=(1, 64)).astype(np.float64)


def _assert_distributions(proba, rows):
    assert proba.shape == (rows, 10) and proba.dtype == np.float32
    assert np.all(np.isfinite(proba)) and proba.min() >= 0 and proba.max() <= 1
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("empty", [np.zeros((0, 64)), np.zeros((0, 8, 8)),
                                   np.zeros((0, 64), dtype=np.uint8)])
def test_empty_batch_returns_zero_rows(model, empty):
    proba = model.predict_proba(empty)
    assert proba.shape == (0, 10) and proba.dtype == np.float32
    assert model.topk(empty, k=3) == []


@pytest.mark.parametrize("empty", [[], ()])
def test_empty_list_returns_an_empty_list(model, empty):
    assert model.predict_proba(empty) == []
    assert model.topk(empty, k=3) == []


def test_one_row_batch_returns_one_row(model):
    _assert_distributions(model.predict_proba(_digit()), 1)


@pytest.mark.parametrize("single", [np.zeros(64), np.zeros((8, 8))])
def test_a_bare_image_is_refused_with_the_reshape_to_use(model, single):
    with pytest.raises(errors.InputError, match=r"batch of one: reshape it to \(1, 64\)"):
        model.predict_proba(single)


def test_images_as_8x8_arrays_equal_flat_rows(model):
    x = np.random.default_rng(4).integers(0, 17, size=(5, 64)).astype(np.float64)
    assert np.array_equal(model.predict_proba(x.reshape(5, 8, 8)), model.predict_proba(x))


@pytest.mark.parametrize("shape", [(3, 63), (3, 65), (3, 8, 9), (2, 3, 64), ()])
def test_wrong_shape_names_the_shape_and_the_expected_one(model, shape):
    with pytest.raises(errors.InputError, match=r"expected \(N, 64\) or \(N, 8, 8\)") as caught:
        model.predict_proba(np.zeros(shape))
    assert str(shape) in str(caught.value)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.uint64, np.float16,
                                   np.float32, np.float64, np.longdouble])
def test_integer_and_float_dtypes_give_the_same_answer(model, dtype):
    x = _digit()
    assert np.array_equal(model.predict_proba(x.astype(dtype)), model.predict_proba(x))


def test_nested_python_lists_are_accepted_and_answered_with_lists(model):
    x = _digit()
    proba = model.predict_proba(x.astype(int).tolist())
    assert isinstance(proba, list) and {type(p) for p in proba[0]} == {float}
    assert np.array_equal(np.array(proba, dtype=np.float32), model.predict_proba(x))


@pytest.mark.parametrize("batch", [
    np.zeros((1, 64), dtype=np.complex128),
    np.zeros((1, 64), dtype=bool),
    np.array([["1"] * 64]),
    np.array([[b"1"] * 64]),
    np.array([[1] * 63 + [None]], dtype=object),
    np.zeros((1, 64), dtype="datetime64[s]"),
], ids=["complex", "bool", "str", "bytes", "object", "datetime"])
def test_non_numeric_dtypes_are_refused_naming_the_dtype(model, batch):
    with pytest.raises(errors.InputError, match=re.escape(f"dtype {batch.dtype};")):
        model.predict_proba(batch)


def test_masked_arrays_are_refused_rather_than_unmasked(model):
    with pytest.raises(errors.InputError, match="filled"):
        model.predict_proba(np.ma.masked_array(np.zeros((1, 64)), mask=True))


def test_ragged_lists_are_refused(model):
    with pytest.raises(errors.InputError, match="rectangular"):
        model.predict_proba([[0] * 64, [0] * 63])


@pytest.mark.parametrize("value, what", [(np.nan, "is NaN"), (np.inf, "is inf"),
                                         (-np.inf, "is -inf")])
def test_non_finite_values_name_the_row_and_pixel(model, value, what):
    x = np.zeros((4, 64), dtype=np.float32)
    x[2, 13] = value
    with pytest.raises(errors.InputError) as caught:
        model.predict_proba(x)
    message = str(caught.value)
    assert "row 2, pixel 13 (image row 1, column 5)" in message and what in message


@pytest.mark.parametrize("value", [-0.001, -1, 16.001, 17, 255])
def test_out_of_range_values_are_refused_not_clipped(model, value):
    x = np.zeros((3, 64))
    x[1, 0] = value
    with pytest.raises(errors.InputError, match=r"row 1, pixel 0 .* outside the range \[0, 16\]"):
        model.predict_proba(x)


def test_uint8_images_on_a_0_255_scale_are_refused(model):
    with pytest.raises(errors.InputError, match="rescale"):
        model.predict_proba(np.full((1, 64), 255, dtype=np.uint8))


def test_fractional_values_are_rounded_half_up_to_levels(model):
    x = _digit()
    nudged = np.clip(x + np.where(x < 16, 0.49, -0.5), 0, 16)  # floor(v + 0.5) == x
    assert np.array_equal(model.predict_proba(nudged), model.predict_proba(x))
    halves = np.clip(x - 0.5, 0, 16)  # k - 0.5 rounds up to k (and 0 stays 0)
    assert np.array_equal(model.predict_proba(halves), model.predict_proba(x))


def test_range_limits_are_inclusive(model):
    _assert_distributions(model.predict_proba(np.array([[0.0] * 32 + [16.0] * 32])), 1)


def test_all_zero_and_all_max_images_give_defined_distributions(model):
    blank, full = np.zeros((1, 64)), np.full((1, 64), 16)
    for image in (blank, full):
        proba = model.predict_proba(image)
        _assert_distributions(proba, 1)
        assert np.array_equal(model.predict_proba(image), proba)


def test_read_only_big_endian_and_fortran_arrays_are_accepted(model):
    x = _digit()
    expected = model.predict_proba(x)
    read_only = x.copy()
    read_only.flags.writeable = False
    assert np.array_equal(model.predict_proba(read_only), expected)
    assert np.array_equal(model.predict_proba(x.astype(">f8")), expected)
    assert np.array_equal(model.predict_proba(np.asfortranarray(x)), expected)


def test_result_is_a_new_writable_array_the_caller_owns(model):
    x = _digit()
    first = model.predict_proba(x)
    first[:] = 0
    assert first.flags.c_contiguous and first.flags.writeable
    assert model.predict_proba(x).sum() > 0


@pytest.mark.parametrize("k", [0, 11, -1, 2.0, True, "3", None])
def test_topk_refuses_k_outside_1_to_the_number_of_labels(model, k):
    with pytest.raises(errors.InputError, match="k must be an integer from 1 to 10"):
        model.topk(_digit(), k=k)


def test_input_errors_are_value_errors_for_generic_callers(model):
    with pytest.raises(ValueError):
        model.predict_proba(np.zeros((1, 3)))
