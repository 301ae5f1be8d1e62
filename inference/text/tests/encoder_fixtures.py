"""A small random sentence-encoder artifact (the real schema, tiny sizes) and a numpy
float64 reference forward pass, for the encoder tests.

`write_artifact(path, candidate)` writes the same random model as "fp32", "fp16" or
"int8" (2-D weights per row, the word table on its own), so every candidate can be
compared with the float64 reference of the weights it actually stores.
"""

import math

import numpy as np

from inference import artifact
from inference.text import spec

DIMS = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 40,
        "vocab_size": 120, "type_vocab_size": 2}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CLS, SEP = 2, 3


def header(candidate, dims=None):
    """The header the conversion writes (see the spec), for `candidate`."""
    dims = dict(DIMS, **(dims or {}))
    return {
        "schema": "sentence-encoder", "schema_version": 1,
        "model": {"name": "tiny-random-bert", "variant": candidate,
                  "source": {"requirement": "none", "files": {}}, "code_revision": "0" * 64},
        "architecture": {"kind": "bert", **dims, "layer_norm_eps": 1e-12,
                         "activation": "gelu_erf"},
        "tokenizer": {"kind": "wordpiece", "lowercase": True, "strip_accents": True,
                      "clean_text": True, "handle_chinese_chars": True, "unk_token": "[UNK]",
                      "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                      "special_tokens": SPECIAL, "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "max_length": 32, "truncation": "right"},
        "pooling": {"mode": "mean"}, "normalize": "l2",
        "output": {"dimension": dims["hidden"]},
        "precision": {"name": candidate, "description": f"{candidate} test weights"},
        "metrics": {},
    }


def float_weights(seed=0, dims=None):
    """{name: float32 array} of a random model (scaled so activations stay moderate)."""
    dims = dict(DIMS, **(dims or {}))
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in spec.expected_tensors(dims).items():
        if name.endswith("norm.weight"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:
            value = 0.1 * rng.standard_normal(shape)
        elif name.startswith("embeddings."):
            value = 0.5 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) / math.sqrt(shape[1])
        out[name] = value.astype(np.float32)
    return out


def quantize_rows(w):
    """Symmetric int8 per row: (int8 values, float32 scales)."""
    scale = (np.abs(w).max(axis=1) / 127).astype(np.float32)
    q = np.round(w / np.where(scale == 0, 1, scale)[:, None]).clip(-127, 127).astype(np.int8)
    return q, scale


def stored_tensors(candidate, seed=0, dims=None):
    """The artifact tensors of `candidate` ("fp32", "fp16", "int8")."""
    dims = dict(DIMS, **(dims or {}))
    tensors = {}
    for name, w in float_weights(seed, dims).items():
        if w.ndim == 1 or candidate == "fp32":
            tensors[name] = w
        elif candidate == "fp16":
            tensors[name] = w.astype(np.float16)
        else:
            q, scale = quantize_rows(w)
            tensors[name] = q
            tensors[name[:-len(".weight")] + ".scale"] = scale
    vocab = SPECIAL + [f"w{i}" for i in range(dims["vocab_size"] - len(SPECIAL))]
    tensors["vocab"] = np.frombuffer("\n".join(vocab).encode(), dtype=np.uint8)
    return tensors


# Candidates of int8 weights with integer activations: their precision.activations.
ACTIVATION_CANDIDATES = {"int8-dynamic": "int8_per_token",
                         "int8-asym": "uint8_asymmetric_per_token"}


def write_artifact(path, candidate="fp32", seed=0, dims=None, header_changes=None,
                   tensors=None):
    """Writes a tiny artifact; returns its version. Candidate "int8-dynamic" is int8
    with int8 activations (precision.activations "int8_per_token"), "int8-asym" int8
    with asymmetric uint8 activations ("uint8_asymmetric_per_token")."""
    head = header(candidate, dims)
    if candidate in ACTIVATION_CANDIDATES:
        head["precision"]["activations"] = ACTIVATION_CANDIDATES[candidate]
        candidate = "int8"
    for key, value in (header_changes or {}).items():
        head[key] = value
    if tensors is None:
        tensors = stored_tensors(candidate, seed, dims)
    return artifact.write(path, head, tensors)


def dequantized(tensors):
    """{name: float64 array} of what the stored tensors mean (scales applied)."""
    out = {}
    for name, value in tensors.items():
        if name == "vocab" or name.endswith(".scale"):
            continue
        value = np.asarray(value)
        if value.dtype == np.uint16:  # artifact.decode gives float16 as its bit patterns
            value = value.view(np.float16)
        if value.dtype == np.int8:
            scale = np.asarray(tensors[name[:-len(".weight")] + ".scale"], dtype=np.float64)
            out[name] = value.astype(np.float64) * scale[:, None]
        else:
            out[name] = value.astype(np.float64)
    return out


def layer_norm(x, g, b, eps):
    """LayerNorm over the last axis."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def gelu(x):
    """Exact (erf) GELU."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def attention(qkv, heads):
    """Self-attention of one sequence, float64: qkv [len, 3h] -> [len, h]."""
    hidden = qkv.shape[1] // 3
    hd = hidden // heads
    q, k, v = qkv[:, :hidden], qkv[:, hidden:2 * hidden], qkv[:, 2 * hidden:]
    out = np.empty((qkv.shape[0], hidden))
    for h in range(heads):
        sl = slice(h * hd, (h + 1) * hd)
        scores = q[:, sl] @ k[:, sl].T / math.sqrt(hd)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        out[:, sl] = (scores / scores.sum(axis=1, keepdims=True)) @ v[:, sl]
    return out


def reference_embed(w, ids, dims=None, eps=1e-12):
    """float64 unit embedding of one id sequence with dequantized weights `w`."""
    dims = dict(DIMS, **(dims or {}))
    ids = np.asarray(ids)
    x = w["embeddings.word.weight"][ids] + w["embeddings.token_type.weight"][0]
    x = x + w["embeddings.position.weight"][:len(ids)]
    x = layer_norm(x, w["embeddings.norm.weight"], w["embeddings.norm.bias"], eps)
    for i in range(dims["layers"]):
        p = f"layers.{i}."

        def linear(h, name, p=p):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        ctx = attention(linear(x, "attention.qkv"), dims["heads"])
        x = layer_norm(linear(ctx, "attention.output") + x, w[p + "attention.norm.weight"],
                       w[p + "attention.norm.bias"], eps)
        inter = gelu(linear(x, "ffn.intermediate"))
        x = layer_norm(linear(inter, "ffn.output") + x, w[p + "ffn.norm.weight"],
                       w[p + "ffn.norm.bias"], eps)
    pooled = x.mean(axis=0)
    return pooled / max(np.linalg.norm(pooled), 1e-12)


def random_ids(rng, length, dims=None):
    """[CLS] + random ordinary tokens + [SEP]."""
    dims = dict(DIMS, **(dims or {}))
    body = rng.integers(len(SPECIAL), dims["vocab_size"], size=max(0, length - 2)).tolist()
    return [CLS] + body + [SEP]
