"""Broken, foreign and mismatched artifacts are refused with messages naming the problem."""

import numpy as np
import pytest

from inference import artifact, errors
from inference.text import spec
from inference.text.encoder import SentenceEncoder
from inference.text.tests import encoder_fixtures as fx


def _write(tmp_path, candidate="fp32", tensors=None, **header_changes):
    path = tmp_path / "broken.model"
    fx.write_artifact(path, candidate, header_changes=header_changes, tensors=tensors)
    return str(path)


def _tensors(candidate="fp32"):
    return fx.stored_tensors(candidate)


def _architecture(**changes):
    return dict(fx.header("fp32")["architecture"], **changes)


def _tokenizer(**changes):
    return dict(fx.header("fp32")["tokenizer"], **changes)


def test_the_test_model_itself_is_valid(tmp_path):
    for candidate in ("fp32", "fp16", "int8"):
        checked = spec.sentence_encoder_spec(artifact.read(_write(tmp_path, candidate)))
        assert checked.dims["hidden"] == fx.DIMS["hidden"]


def test_another_schema_is_incompatible(tmp_path):
    with pytest.raises(errors.IncompatibleArtifactError, match="'classifier' artifact, not a "
                       "'sentence-encoder' one"):
        SentenceEncoder.load(_write(tmp_path, schema="classifier"))


def test_a_newer_schema_version_is_incompatible(tmp_path):
    with pytest.raises(errors.IncompatibleArtifactError, match="schema version 2; this "
                       "library reads version 1"):
        SentenceEncoder.load(_write(tmp_path, schema_version=2))


def test_a_digits_model_is_refused(tmp_path):
    path = tmp_path / "digits.model"
    artifact.write(path, {"output": {"schema_version": 1}}, {"w": np.zeros(3, np.float32)})
    with pytest.raises(errors.IncompatibleArtifactError, match="None artifact"):
        SentenceEncoder.load(str(path))


@pytest.mark.parametrize("changes, message", [
    ({"architecture": _architecture(kind="gpt")}, "architecture.kind is 'gpt'"),
    ({"architecture": _architecture(activation="gelu_tanh")},
     "architecture.activation is 'gelu_tanh'"),
    ({"architecture": _architecture(layers=0)}, "architecture.layers must be a positive"),
    ({"architecture": _architecture(hidden="32")}, "architecture.hidden must be a positive"),
    ({"architecture": _architecture(heads=3)}, r"hidden \(32\) is not a multiple of "
     r"architecture.heads \(3\)"),
    ({"architecture": _architecture(layer_norm_eps=0)}, "layer_norm_eps must be a number"),
    ({"pooling": {"mode": "cls"}}, "pooling.mode is 'cls'"),
    ({"normalize": None}, "normalize is None"),
    ({"output": {"dimension": 31}}, r"output.dimension is 31, expected architecture.hidden "
     r"\(32\)"),
    ({"tokenizer": _tokenizer(kind="bpe")}, "tokenizer.kind is 'bpe'"),
    ({"tokenizer": _tokenizer(lowercase="yes")}, "tokenizer.lowercase must be true or false"),
    ({"tokenizer": _tokenizer(max_length=41)}, r"tokenizer.max_length is 41, outside 2..40"),
    ({"tokenizer": _tokenizer(truncation="left")}, "tokenizer.truncation is 'left'"),
    ({"tokenizer": _tokenizer(special_tokens="[PAD]")}, "tokenizer.special_tokens must be a "
     "list"),
    ({"precision": {"name": "fp32"}}, "precision.description must be a non-empty string"),
    ({"precision": {"name": "fp32", "description": "x", "activations": "int4"}},
     r"precision.activations is 'int4'; expected one of \['float32', 'int8_per_token', "
     r"'uint8_asymmetric_per_token'\]"),
    ({"precision": {"name": "fp32", "description": "x", "activations": ["int8_per_token"]}},
     r"precision.activations is \['int8_per_token'\]; expected one of"),
    ({"precision": {"name": "fp32", "description": "x", "activations": "int8_per_token"}},
     "precision.activations 'int8_per_token' needs int8 layer weights; "
     "layers.0.attention.output.weight is not int8"),
    ({"precision": {"name": "fp32", "description": "x",
                    "activations": "uint8_asymmetric_per_token"}},
     "precision.activations 'uint8_asymmetric_per_token' needs int8 layer weights; "
     "layers.0.attention.output.weight is not int8"),
    ({"metrics": None}, "header field 'metrics' is missing"),
    ({"model": None}, "header field 'model' is missing"),
])
def test_bad_header_fields_are_named(tmp_path, changes, message):
    with pytest.raises(errors.CorruptArtifactError, match=message):
        SentenceEncoder.load(_write(tmp_path, **changes))


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(errors.CorruptArtifactError) as caught:
        SentenceEncoder.load(_write(tmp_path, pooling={"mode": "max"}, normalize="none",
                                    tokenizer=_tokenizer(truncation="middle")))
    text = str(caught.value)
    for part in ("pooling.mode", "normalize is", "tokenizer.truncation",
                 "Rebuild it with the model's conversion target"):
        assert part in text


def _without(name, candidate="fp32"):
    tensors = _tensors(candidate)
    del tensors[name]
    return tensors


def _with(name, value, candidate="fp32"):
    return dict(_tensors(candidate), **{name: value})


@pytest.mark.parametrize("candidate, tensors, message", [
    ("fp32", _without("layers.1.ffn.output.weight"),
     "tensor 'layers.1.ffn.output.weight' is missing"),
    ("fp32", _without("vocab"), "tensor 'vocab' is missing"),
    ("fp32", _with("vocab", np.frombuffer(b"a\nb", np.uint8)), r"'vocab' holds 2 tokens, "
     r"expected architecture.vocab_size \(120\)"),
    ("fp32", _with("layers.0.attention.qkv.weight", np.zeros((96, 31), np.float32)),
     r"'layers.0.attention.qkv.weight' is float32 \[96, 31\], expected float32 / float16 / "
     r"int8 \[96, 32\]"),
    ("fp32", _with("layers.0.attention.qkv.weight", np.zeros((96, 32), np.int32)),
     r"is int32 \[96, 32\], expected float32 / float16 / int8"),
    ("fp32", _with("embeddings.norm.bias", np.zeros(32, np.float16)),
     r"'embeddings.norm.bias' is float16 \[32\], expected float32 \[32\]"),
    ("fp32", _with("embeddings.norm.bias", np.full(32, np.nan, np.float32)),
     "'embeddings.norm.bias' holds NaN or infinite values"),
    ("int8", _without("layers.0.ffn.intermediate.scale", "int8"),
     "'layers.0.ffn.intermediate.scale' is missing: int8 'layers.0.ffn.intermediate.weight' "
     "needs its float32 per-row scales"),
    ("int8", _with("embeddings.word.scale", np.ones(119, np.float32), "int8"),
     r"'embeddings.word.scale' is float32 \[119\], expected float32 \[120\]"),
    ("int8", _with("embeddings.word.scale", -np.ones(120, np.float32), "int8"),
     "'embeddings.word.scale' holds negative, NaN or infinite scales"),
    ("fp32", _with("embeddings.word.scale", np.ones(120, np.float32)),
     r"unexpected tensors \['embeddings.word.scale'\]"),
    ("fp32", _with("extra", np.ones(1, np.float32)), r"unexpected tensors \['extra'\]"),
])
def test_bad_tensors_are_named(tmp_path, candidate, tensors, message):
    with pytest.raises(errors.CorruptArtifactError, match=message):
        SentenceEncoder.load(_write(tmp_path, candidate, tensors=tensors))


def test_dimensions_the_kernels_cannot_run_are_incompatible(tmp_path):
    dims = {"hidden": 48, "heads": 3, "intermediate": 64}
    path = tmp_path / "odd.model"
    fx.write_artifact(path, "fp32", dims=dims)
    with pytest.raises(errors.IncompatibleArtifactError, match="hidden 48, intermediate 64, "
                       "head size 16"):
        SentenceEncoder.load(str(path))


def test_a_corrupted_file_is_refused_by_the_container_check(tmp_path):
    path = _write(tmp_path)
    with open(path, "rb") as src:
        data = bytearray(src.read())
    data[-5] ^= 1
    with open(path, "wb") as out:
        out.write(data)
    with pytest.raises(errors.CorruptArtifactError, match="does not match the checksum"):
        SentenceEncoder.load(path)


def test_a_missing_file_is_unreadable(tmp_path):
    with pytest.raises(errors.ArtifactUnreadableError):
        SentenceEncoder.load(str(tmp_path / "nowhere.model"))
