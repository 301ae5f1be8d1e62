"""The reference encoder's parts: erf, GELU, padding, batching and bad ids."""

import math

import numpy as np
import pytest

from inference.text import reference
from models.minilm import paths


@pytest.fixture(name="encoder", scope="module")
def fixture_encoder():
    """The int8 candidate's reference encoder (any candidate will do)."""
    return reference.ReferenceEncoder.load(paths.runfile(paths.candidate_model("int8")))


def test_erf_is_within_1e_minus_10_of_math_erf():
    x = np.concatenate([np.linspace(-9, 9, 400_001), [0.0, -0.0, 2.5, -2.5, 6.0, 40.0, -1e9]])
    expected = np.array([math.erf(v) for v in x])
    assert np.abs(reference.erf(x) - expected).max() < 1e-10


def test_gelu_is_the_exact_erf_form_and_keeps_the_dtype():
    x = np.linspace(-6, 6, 1001).astype(np.float32)
    expected = np.array([v * (1 + math.erf(v / math.sqrt(2))) / 2 for v in x.tolist()])
    got = reference.gelu(x)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-6


def test_padding_does_not_change_a_sentence(encoder):
    short, long_ = [101, 7592, 102], [101] + list(range(2000, 2040)) + [102]
    alone = encoder.embed_batch([short])
    padded = encoder.embed_batch([short, long_])[:1]
    np.testing.assert_allclose(alone, padded, atol=1e-6)


def test_rows_come_back_in_the_order_given(encoder):
    ids = [[101] + list(range(3000, 3000 + n)) + [102] for n in (30, 1, 12, 5)]
    together = encoder.embed(ids, batch_size=2)
    one_by_one = np.vstack([encoder.embed([row]) for row in ids])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)


def test_an_empty_sentence_gives_a_zero_vector_as_sentence_transformers_does(encoder):
    assert not np.any(encoder.embed([[]]))


@pytest.mark.parametrize("ids, message", [
    ([[101, 30522, 102]], "outside 0..30521"),
    ([[101, -1, 102]], "outside 0..30521"),
    ([[101] * 257], "at most 256"),
])
def test_bad_token_ids_are_refused_with_the_reason(encoder, ids, message):
    with pytest.raises(ValueError, match=message):
        encoder.embed(ids)


def test_an_artifact_of_another_schema_is_refused(encoder):
    header = dict(encoder.header, schema="classifier")
    with pytest.raises(reference.SchemaError, match="sentence-encoder"):
        reference.ReferenceEncoder(header, {})


def test_int8_activations_code_each_token_row_on_its_own_scale():
    encoder = reference.ReferenceEncoder.load(paths.runfile(paths.candidate_model("int8-dynamic")))
    assert sorted(encoder.int8_codes)[:2] == ["layers.0.attention.output",
                                              "layers.0.attention.qkv"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 384)).astype(np.float32)
    x[1, 2] = 0.0
    got = encoder._linear_int8(x, "layers.0.attention.qkv")  # pylint: disable=protected-access
    codes_w, scale_w = encoder.int8_codes["layers.0.attention.qkv"]
    bias = encoder.weights["layers.0.attention.qkv.bias"]
    for b in range(3):
        for t in range(4):
            row = x[b, t]
            top = float(np.abs(row).max())
            if top == 0:
                np.testing.assert_array_equal(got[b, t], bias)
                continue
            codes = np.floor(row * np.float32(127 / np.float32(top)) + np.float32(0.5))
            assert np.abs(codes).max() <= 127
            expected = (codes.astype(np.float64) @ codes_w) * (np.float64(top) / 127) * scale_w \
                + bias
            np.testing.assert_allclose(got[b, t], expected, rtol=1e-5, atol=1e-5)


def test_int8_activations_stay_close_to_int8_weights_alone():
    ids = [[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 2023, 2003, 102]]
    dynamic = reference.ReferenceEncoder.load(
        paths.runfile(paths.candidate_model("int8-dynamic"))).embed(ids)
    weights_only = reference.ReferenceEncoder.load(
        paths.runfile(paths.candidate_model("int8"))).embed(ids)
    cos = (dynamic * weights_only).sum(axis=1)
    assert cos.min() > 0.98 and not np.array_equal(dynamic, weights_only)


def test_asymmetric_activations_code_each_token_row_over_its_range():
    encoder = reference.ReferenceEncoder.load(paths.runfile(paths.candidate_model("int8-asym")))
    assert encoder.activations == "uint8_asymmetric_per_token"
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((2, 3, 384)) + 0.3).astype(np.float32)
    x[1, 2] = 0.0
    got = encoder._linear(x, "layers.0.ffn.intermediate")  # pylint: disable=protected-access
    codes_w, scale_w = encoder.int8_codes["layers.0.ffn.intermediate"]
    bias = encoder.weights["layers.0.ffn.intermediate.bias"]
    np.testing.assert_array_equal(got[1, 2], bias)
    codes, step, zero = reference.quantize_asymmetric(x)
    for b, t in ((0, 0), (0, 2), (1, 1)):
        row = x[b, t].astype(np.float64)
        low, high = min(row.min(), 0.0), max(row.max(), 0.0)
        assert abs(step[b, t, 0] - (high - low) / 255) <= 1e-6 * step[b, t, 0]
        assert abs(zero[b, t, 0] + low / step[b, t, 0]) <= 0.5 + 1e-4
        assert codes[b, t].min() >= 0 and codes[b, t].max() <= 255
        restored = (codes[b, t].astype(np.float64) - zero[b, t, 0]) * step[b, t, 0]
        assert np.abs(restored - row).max() <= step[b, t, 0] * 0.51
        expected = (restored @ codes_w) * scale_w + bias
        np.testing.assert_allclose(got[b, t], expected, rtol=1e-4, atol=1e-4)


def test_asymmetric_activations_code_each_row_on_its_own():
    """A token row's codes and outputs depend on that row only: the same bits alone or
    among others. (Whole sentences still differ a little with padding: the attention's
    float sums change order, and a rare activation then crosses a code boundary.)"""
    encoder = reference.ReferenceEncoder.load(paths.runfile(paths.candidate_model("int8-asym")))
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5, 384)).astype(np.float32)
    linear = encoder._linear  # pylint: disable=protected-access
    together = linear(x, "layers.2.attention.qkv")
    for b in range(3):
        for t in range(5):
            alone = linear(x[b, t][None, None], "layers.2.attention.qkv")
            assert alone[0, 0].tobytes() == together[b, t].tobytes()
