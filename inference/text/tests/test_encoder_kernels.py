"""Each kernel of _encoder against numpy, on every instruction set this CPU can run."""

import math

import numpy as np
import pytest

from inference.text import _encoder, reference
from inference.text.tests import encoder_fixtures as fx

BEST = _encoder.isa()
ISAS = {"avx512": ["avx512", "avx2", "x86-64"], "avx2": ["avx2", "x86-64"],
        "x86-64": ["x86-64"]}[BEST]


@pytest.fixture(name="isa", params=ISAS)
def fixture_isa(request):
    """Runs the test with the kernels of one instruction set, then restores the best."""
    _encoder.use_isa(None if request.param == BEST else request.param)
    assert _encoder.isa() == request.param
    yield request.param
    _encoder.use_isa(None)


def _bytes(a):
    return memoryview(np.ascontiguousarray(a)).cast("B")


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("rows", [1, 7, 8, 13, 70])
def test_linear_matches_numpy(isa, dtype, rows):
    del isa
    rng = np.random.default_rng(rows)
    n, k = 96, 160
    x = rng.standard_normal((rows, k)).astype(np.float32)
    w = (rng.standard_normal((n, k)) / math.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    scale = None
    if dtype == "float16":
        stored = w.astype(np.float16)
        exact = stored.astype(np.float64)
        raw = _bytes(stored.view(np.uint16))
    elif dtype == "int8":
        stored, s = fx.quantize_rows(w)
        exact = stored.astype(np.float64) * s[:, None].astype(np.float64)
        raw, scale = _bytes(stored), _bytes(s)
    else:
        exact, raw = w.astype(np.float64), _bytes(w)
    y = np.zeros((rows, n), np.float32)
    _encoder.kernel_linear(x, raw, dtype, scale, b, y)
    expected = x.astype(np.float64) @ exact.T + b
    np.testing.assert_allclose(y, expected, rtol=0, atol=2e-5)


def test_linear_row_does_not_depend_on_its_tile(isa):
    """Row 5 alone, or at every position of tiles of other rows: the same bits."""
    del isa
    rng = np.random.default_rng(1)
    n, k = 64, 96
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal((19, k)).astype(np.float32)
    alone = np.zeros((1, n), np.float32)
    _encoder.kernel_linear(x[5:6].copy(), _bytes(w), "float32", None, b, alone)
    for shift in range(9):
        rows = np.roll(x, shift, axis=0)
        y = np.zeros((19, n), np.float32)
        _encoder.kernel_linear(rows, _bytes(w), "float32", None, b, y)
        assert y[(5 + shift) % 19].tobytes() == alone[0].tobytes()


def _quantize_like_the_kernel(x):
    """Per-row int8 codes (offset 128) and scales: max |x| / 127, halves rounded up."""
    top = np.abs(x).max(axis=1).astype(np.float32)
    inv = (np.float32(127) / np.where(top > 0, top, 1)).astype(np.float32)
    codes = np.floor(x * inv[:, None] + np.float32(128.5)).astype(np.int64)
    codes[top == 0] = 128
    return codes, np.where(top > 0, top / np.float32(127), 0).astype(np.float32)


def test_quantize_rows_matches_numpy(isa):
    del isa
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 96)).astype(np.float32) * rng.random((9, 1)).astype(np.float32)
    x[3] = 0
    codes, scales = np.zeros((9, 96), np.uint8), np.zeros(9, np.float32)
    _encoder.quantize_rows(x, codes, scales)
    expected_codes, expected_scales = _quantize_like_the_kernel(x)
    assert np.array_equal(codes, expected_codes)
    assert scales.tobytes() == expected_scales.tobytes()
    assert codes.min() >= 1 and codes[3].tolist() == [128] * 96


@pytest.mark.parametrize("rows", [1, 3, 4, 9])
def test_int8_activation_linear_is_exact_integer_arithmetic(isa, rows):
    """Integer sums of the codes, then one float scale and bias per element."""
    del isa
    rng = np.random.default_rng(rows)
    n, k = 64, 160
    x = rng.standard_normal((rows, k)).astype(np.float32)
    q, s = fx.quantize_rows(rng.standard_normal((n, k)).astype(np.float32))
    b = rng.standard_normal(n).astype(np.float32)
    y = np.zeros((rows, n), np.float32)
    _encoder.kernel_linear(x, _bytes(q), "int8", _bytes(s), b, y, True)
    codes, sx = _quantize_like_the_kernel(x)
    sums = (codes - 128) @ q.T.astype(np.int64)
    expected = sums * (sx[:, None].astype(np.float64) * s[None, :]) + b
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-5)
    # and it stays near the float product (the codes carry ~7 bits of each row)
    exact = x.astype(np.float64) @ (q.astype(np.float64) * s[:, None]).T + b
    assert np.abs(y - exact).max() < 0.05 * np.abs(exact).max()


@pytest.mark.parametrize("rows", [1, 5, 13, 70])
def test_int8_activation_linear_sums_blocks_of_inputs_exactly(isa, rows):
    """k = 1040: two full input blocks of 512 and a partial one (int32 partial sums kept
    between blocks), 3 panels, and more rows than one chunk (64)."""
    del isa
    rng = np.random.default_rng(100 + rows)
    n, k = 96, 1040
    x = rng.standard_normal((rows, k)).astype(np.float32)
    q, s = fx.quantize_rows(rng.standard_normal((n, k)).astype(np.float32))
    b = rng.standard_normal(n).astype(np.float32)
    y = np.zeros((rows, n), np.float32)
    _encoder.kernel_linear(x, _bytes(q), "int8", _bytes(s), b, y, True)
    codes, sx = _quantize_like_the_kernel(x)
    sums = (codes - 128) @ q.T.astype(np.int64)
    expected = sums * (sx[:, None].astype(np.float64) * s[None, :]) + b
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-5)


ASYM = _encoder.ACTIVATIONS["uint8_asymmetric_per_token"]


def test_asymmetric_codes_match_the_reference(isa):
    """uint8 codes over each row's range (zero included) with an integer zero point: the
    reference's codes, steps and zero points, bit for bit; a zero row, or one with inf or
    NaN, is all code 0 with step 0."""
    del isa
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 96)).astype(np.float32) * rng.random((9, 1)).astype(np.float32)
    x[1] += np.float32(3)  # all positive: zero point 0, the range 0..max
    x[2] -= np.float32(3)  # all negative: zero point 255
    x[3] = 0
    x[4, 7] = np.inf
    x[5, 2] = np.nan
    codes, step, zero = (np.zeros((9, 96), np.uint8), np.zeros(9, np.float32),
                         np.zeros(9, np.int32))
    _encoder.quantize_rows_asym(x, codes, step, zero)
    expected_codes, expected_step, expected_zero = reference.quantize_asymmetric(x)
    assert np.array_equal(codes, expected_codes.astype(np.uint8))
    assert step.tobytes() == expected_step[:, 0].tobytes()
    assert zero.tolist() == expected_zero[:, 0].astype(np.int32).tolist()
    assert zero[1] == 0 and codes[1].max() == 255
    assert zero[2] == 255 and codes[2].min() == 0
    for r in (0, 6, 7, 8):  # both signs: the row's min -> 0, its max -> 255
        assert codes[r].min() == 0 and codes[r].max() == 255 and 0 < zero[r] < 255
    for r in (3, 4, 5):
        assert not codes[r].any() and step[r] == 0 and zero[r] == 0
    restored = (codes.astype(np.float32) - zero[:, None]) * step[:, None]
    rows = [0, 1, 2, 6, 7, 8]
    assert (np.abs(restored - x)[rows] <= step[rows, None] * 0.5001).all()


def _asymmetric_expected(x, q, s, b):
    codes, step, zero = reference.quantize_asymmetric(x)
    sums = codes.astype(np.int64) @ q.T.astype(np.int64) - \
        zero.astype(np.int64) * q.astype(np.int64).sum(axis=1)
    return sums * (step.astype(np.float64) * s) + b


@pytest.mark.parametrize("rows", [1, 3, 5, 13, 70])
def test_asymmetric_activation_linear_is_exact_integer_arithmetic(isa, rows):
    """uint8 codes times int8 weights summed exactly (k = 1040: partial input blocks,
    more rows than a chunk), the minimum added back through the weights' column sums."""
    del isa
    rng = np.random.default_rng(200 + rows)
    n, k = 96, 1040
    x = (rng.standard_normal((rows, k)) + 0.5).astype(np.float32)
    q, s = fx.quantize_rows(rng.standard_normal((n, k)).astype(np.float32))
    b = rng.standard_normal(n).astype(np.float32)
    y = np.zeros((rows, n), np.float32)
    _encoder.kernel_linear(x, _bytes(q), "int8", _bytes(s), b, y, ASYM)
    np.testing.assert_allclose(y, _asymmetric_expected(x, q, s, b), rtol=1e-5, atol=1e-4)
    # and it stays near the float product (the codes carry 8 bits of each row's range)
    exact = x.astype(np.float64) @ (q.astype(np.float64) * s[:, None]).T + b
    assert np.abs(y - exact).max() < 0.05 * np.abs(exact).max()


def test_asymmetric_codes_beat_symmetric_ones_on_one_sided_rows(isa):
    """Rows like GELU outputs (mostly positive, a short negative tail): the asymmetric
    codes spend their 256 steps on the row's own range, the symmetric ones waste half."""
    del isa
    rng = np.random.default_rng(7)
    n, k = 64, 512
    x = (rng.exponential(1.0, (16, k)) - 0.17).astype(np.float32)
    q, s = fx.quantize_rows(rng.standard_normal((n, k)).astype(np.float32))
    b = np.zeros(n, np.float32)
    exact = x.astype(np.float64) @ (q.astype(np.float64) * s[:, None]).T
    errors = {}
    for mode in (True, ASYM):
        y = np.zeros((16, n), np.float32)
        _encoder.kernel_linear(x, _bytes(q), "int8", _bytes(s), b, y, mode)
        errors[mode] = np.abs(y - exact).mean()
    assert errors[ASYM] < 0.75 * errors[True]


@pytest.mark.parametrize("mode, seed", [(True, 3), (ASYM, 6)], ids=["int8", "uint8-asym"])
def test_integer_activation_row_does_not_depend_on_its_tile(isa, mode, seed):
    """Row 5 alone, or at every position of tiles of other rows: the same bits (the
    symmetric int8 and the asymmetric uint8 activation codes)."""
    del isa
    rng = np.random.default_rng(seed)
    n, k = 64, 1040
    q, s = fx.quantize_rows(rng.standard_normal((n, k)).astype(np.float32))
    b = rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal((19, k)).astype(np.float32)
    alone = np.zeros((1, n), np.float32)
    _encoder.kernel_linear(x[5:6].copy(), _bytes(q), "int8", _bytes(s), b, alone, mode)
    for shift in range(9):
        rows = np.roll(x, shift, axis=0)
        y = np.zeros((19, n), np.float32)
        _encoder.kernel_linear(rows, _bytes(q), "int8", _bytes(s), b, y, mode)
        assert y[(5 + shift) % 19].tobytes() == alone[0].tobytes()


def test_unknown_activation_mode_is_refused():
    x = np.zeros((1, 32), np.float32)
    q, s = fx.quantize_rows(np.ones((32, 32), np.float32))
    with pytest.raises(ValueError, match="unknown activation mode 3"):
        _encoder.kernel_linear(x, _bytes(q), "int8", _bytes(s), np.zeros(32, np.float32),
                               np.zeros((1, 32), np.float32), 3)


@pytest.mark.parametrize("length", [1, 2, 15, 16, 17, 40])
def test_attention_matches_numpy(isa, length):
    del isa
    rng = np.random.default_rng(length)
    hidden, heads = 64, 4
    qkv = rng.standard_normal((length, 3 * hidden)).astype(np.float32)
    ctx = np.zeros((length, hidden), np.float32)
    _encoder.kernel_attention(qkv, heads, ctx)
    np.testing.assert_allclose(ctx, fx.attention(qkv.astype(np.float64), heads), rtol=0,
                               atol=2e-6)


def test_add_norm_matches_numpy(isa):
    del isa
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 48)).astype(np.float32)
    b = (3 + rng.standard_normal((5, 48))).astype(np.float32)
    gamma = rng.standard_normal(48).astype(np.float32)
    beta = rng.standard_normal(48).astype(np.float32)
    out = np.zeros_like(a)
    _encoder.kernel_add_norm(a, b, gamma, beta, 1e-12, out)
    expected = fx.layer_norm(a.astype(np.float64) + b, gamma, beta, 1e-12)
    np.testing.assert_allclose(out, expected, rtol=0, atol=3e-6)


def test_add_norm_of_a_constant_row_is_beta():
    """Zero variance: (x - mean) is exactly 0, so the row is beta (no NaN from 0 / 0)."""
    a = np.full((1, 32), 2.5, np.float32)
    beta = np.arange(32, dtype=np.float32)
    out = np.zeros_like(a)
    _encoder.kernel_add_norm(a, np.zeros_like(a), np.ones(32, np.float32), beta, 1e-12, out)
    assert out.tolist() == [beta.tolist()]


def test_gelu_is_the_exact_erf_form(isa):
    """Within about one float32 rounding of erf (the kernel's piecewise erf is
    within 6e-8 of the true one) of the float64 exact-erf GELU, odd lengths too."""
    del isa
    x = np.linspace(-9, 9, 200_001).astype(np.float32)
    y = x.copy()
    _encoder.kernel_gelu(y)
    np.testing.assert_allclose(y, fx.gelu(x.astype(np.float64)), rtol=1e-6, atol=2e-7)


def test_gelu_keeps_special_values():
    x = np.array([np.nan, np.inf, 0.0, -0.0, 1e-30, -100.0, 100.0], np.float32)
    _encoder.kernel_gelu(x)
    assert np.isnan(x[0]) and x[1] == np.inf and x[5] == 0 and x[6] == 100
    assert x[2:5].tolist() == [0.0, -0.0, np.float32(5e-31)]


def test_half_to_float_matches_numpy_for_every_bit_pattern():
    bits = np.arange(65536, dtype=np.uint16)
    expected = bits.view(np.float16).astype(np.float32)
    got = np.array([_encoder.half_to_float(int(b)) for b in bits], np.float32)
    finite = np.isfinite(expected)
    assert got[finite].tobytes() == expected[finite].tobytes()
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(got[np.isinf(expected)], expected[np.isinf(expected)])
