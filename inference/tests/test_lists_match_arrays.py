"""Lists in, lists out: the same rows as lists or as arrays give the same bits and errors."""

import decimal
import fractions

import numpy as np
import pytest

from inference import errors


def _bits(proba):
    """float32 probabilities (array or list of lists) as their exact bit patterns."""
    return np.asarray(proba, dtype=np.float32).view(np.uint32)


def _batches(images):
    rng = np.random.default_rng(21)
    return {
        "test split as ints": images.astype(int),
        "test split as floats": images,
        "random reals": rng.uniform(0, 16, size=(40, 64)),
        "halves": rng.integers(0, 16, size=(20, 64)) + 0.5,
        "limits": np.array([[0.0] * 32 + [16.0] * 32, [16] * 64, [0] * 64]),
        "one row": images[:1],
    }


@pytest.mark.parametrize("name", ["test split as ints", "test split as floats", "random reals",
                                  "halves", "limits", "one row"])
def test_lists_and_arrays_give_identical_probability_bits(model, images, name):
    x = _batches(images)[name]
    from_list = model.predict_proba(x.tolist())
    assert isinstance(from_list, list) and len(from_list) == len(x)
    assert {type(row) for row in from_list} == {list}
    assert {len(row) for row in from_list} == {10}
    assert {type(p) for row in from_list for p in row} == {float}  # not numpy scalars
    assert np.array_equal(_bits(from_list), _bits(model.predict_proba(x)))
    assert np.array_equal(_bits(from_list), _bits(model.predict_proba(x.astype(np.float32))))


def test_topk_is_the_same_for_lists_and_arrays(model, images):
    x = images[:64]
    for k in (1, 3, 10):
        assert model.topk(x.astype(int).tolist(), k=k) == model.topk(x, k=k)


def test_8x8_nested_rows_tuples_and_mixed_number_types_equal_flat_lists(model, images):
    x = images[:10]
    flat = model.predict_proba(x.tolist())
    assert model.predict_proba(x.reshape(10, 8, 8).tolist()) == flat
    assert model.predict_proba(tuple(tuple(row) for row in x.astype(int).tolist())) == flat
    mixed = [[int(v) if i % 2 else float(v) for i, v in enumerate(row)] for row in x]
    assert model.predict_proba(mixed) == flat


def test_numpy_scalars_and_other_real_numbers_in_lists_are_accepted(model, images):
    x = images[:3]
    flat = model.predict_proba(x.tolist())
    assert model.predict_proba([list(row.astype(np.float32)) for row in x]) == flat
    assert model.predict_proba([list(row.astype(np.int64)) for row in x]) == flat
    assert model.predict_proba([[fractions.Fraction(int(v)) for v in row] for row in x]) == flat


def test_each_call_returns_new_lists_the_caller_owns(model, images):
    rows = images[:2].tolist()
    first = model.predict_proba(rows)
    first[0][0] = -1.0
    assert model.predict_proba(rows)[0][0] >= 0


def _list_and_array(shape, where=None, value=None):
    x = np.zeros(shape)
    if where is not None:
        x[where] = value
    return x.tolist(), x


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, -0.001, -1, 16.001, 17, 255])
def test_bad_values_give_the_same_error_for_lists_and_arrays(model, value):
    rows, x = _list_and_array((4, 64), (2, 13), value)
    with pytest.raises(errors.InputError) as from_array:
        model.predict_proba(x)
    with pytest.raises(errors.InputError) as from_list:
        model.predict_proba(rows)
    assert str(from_list.value) == str(from_array.value)
    assert "row 2, pixel 13 (image row 1, column 5)" in str(from_list.value)
    if np.isfinite(value) and value == int(value):  # the same value as a Python int
        rows[2][13] = int(value)
        with pytest.raises(errors.InputError) as from_ints:
            model.predict_proba(rows)
        assert str(from_ints.value) == str(from_array.value)


@pytest.mark.parametrize("shape", [(3, 63), (3, 65), (3, 8, 9), (2, 3, 64), (64,), (8, 8),
                                   (1, 0), (2, 64, 1)])
def test_wrong_shapes_give_the_same_error_for_lists_and_arrays(model, shape):
    rows, x = _list_and_array(shape)
    with pytest.raises(errors.InputError) as from_array:
        model.predict_proba(x)
    with pytest.raises(errors.InputError) as from_list:
        model.predict_proba(rows)
    assert str(from_list.value) == str(from_array.value)
    assert str(shape) in str(from_list.value)


@pytest.mark.parametrize("value, array, named", [
    (True, np.zeros((1, 64), dtype=bool), "a bool (True)"),
    ("1", np.array([["1"] * 64]), "a str ('1')"),
    (b"1", np.array([[b"1"] * 64]), "a bytes (b'1')"),
    (None, np.array([[1] * 64], dtype=object), "a NoneType (None)"),
    (1j, np.zeros((1, 64), dtype=np.complex128), "a complex (1j)"),
    (decimal.Decimal(1), np.array([[decimal.Decimal(1)] * 64]), "a Decimal (Decimal('1'))"),
    (np.bool_(True), np.zeros((1, 64), dtype=bool), "a bool (np.True_)"),
], ids=["bool", "str", "bytes", "None", "complex", "Decimal", "numpy bool"])
def test_non_numbers_in_lists_are_refused_naming_the_pixel_and_the_fix(
        model, value, array, named):
    rows = [[0] * 64, [0] * 64]
    rows[1][9] = value
    with pytest.raises(errors.InputError) as from_list:
        model.predict_proba(rows)
    with pytest.raises(errors.InputError) as from_array:
        model.predict_proba(array)
    message = str(from_list.value)
    assert message.startswith(f"batch row 1, pixel 9 (image row 1, column 1) is {named}; ")
    # The array names its dtype instead of a pixel; the fix is the same sentence.
    assert message.split("; ", 1)[1] == str(from_array.value).split("; ", 1)[1] == (
        "pixel values must be integers or floats (levels 0..16).")


def test_non_numbers_in_nested_8x8_rows_name_the_flat_pixel(model):
    rows = np.zeros((1, 8, 8), dtype=int).tolist()
    rows[0][2][3] = "x"
    with pytest.raises(errors.InputError, match=r"row 0, pixel 19 \(image row 2, column 3\)"):
        model.predict_proba(rows)


@pytest.mark.parametrize("rows, detail", [
    ([[0] * 64, [0] * 63], r"batch\[1\] has shape \(63,\), batch\[0\] has shape \(64,\)"),
    ([[0] * 64, [[0] * 8] * 8], r"batch\[1\] has shape \(8, 8\), batch\[0\] has shape \(64,\)"),
    ([[0] * 63 + [[0]]], r"batch\[0\]\[63\] has shape \(1,\), batch\[0\]\[0\] has shape \(\)"),
])
def test_ragged_lists_are_refused_naming_the_odd_row(model, rows, detail):
    with pytest.raises(errors.InputError, match="not a rectangular array of numbers") as caught:
        model.predict_proba(rows)
    assert caught.match(detail)


def test_rows_that_are_not_lists_are_refused_by_type(model):
    with pytest.raises(errors.InputError, match=r"batch\[1\] has type ndarray, not list or tuple"):
        model.predict_proba([[0] * 64, np.zeros(64)])
    with pytest.raises(errors.InputError, match=r"batch\[0\] has type dict"):
        model.predict_proba([{}])


def test_an_int_too_large_for_a_float_is_out_of_range(model):
    rows = [[0] * 64]
    rows[0][5] = 10 ** 400
    with pytest.raises(errors.InputError, match=r"row 0, pixel 5 .* outside the range \[0, 16\]"):
        model.predict_proba(rows)


def test_int_and_float_subclasses_are_numbers_but_bool_is_not(model, images):
    class Level(int):
        """An int subclass, as an enum or a units library might pass."""

    x = images[:1].astype(int)
    assert model.predict_proba([[Level(v) for v in x[0]]]) == model.predict_proba(x.tolist())
