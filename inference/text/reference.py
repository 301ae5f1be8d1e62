"""The numpy reference of the sentence encoder: what every faster implementation must match.

    encoder = ReferenceEncoder.load("minilm-int8.model")
    vectors = encoder.embed([[101, 7592, 2088, 102], [101, 102]])   # float32 (2, 384)

It reads a "sentence-encoder" artifact (schema version 1, any candidate: int8
and float16 weights are dequantized to float32 first, exactly as stored) and
turns token ids, one list per sentence ([CLS] ... [SEP], as the tokenizer
makes them), into L2-normalized mean-pooled embeddings, as sentence-transformers
computes them for a BERT model:

    h = LayerNorm(word[ids] + position[0..n-1] + token_type[0])
    per layer: a = LayerNorm(h + Attention(h) @ Wo.T + bo)
               h = LayerNorm(a + GELU(a @ Wi.T + bi) @ Wf.T + bf)
    e = sum(h * mask) / max(sum(mask), 1e-9);   e / max(|e|, 1e-12)

Sentences of a batch are padded to the longest; padding is masked out of
attention (the largest negative float added to its scores, as Hugging Face
does) and out of the mean. GELU is the exact form x * (1 + erf(x / sqrt(2))) / 2
with an erf of this module (`erf`, float64, absolute error below 1e-11).
With precision.activations "int8_per_token" the layers' linear maps run on int8
codes of each token's activations, with "uint8_asymmetric_per_token" on uint8
codes over each token's range with an integer zero point (inference/text/spec.py),
as the kernels do.
numpy only: for tests, evaluation and building; not for the runtime image.
"""

import math

import numpy as np

from inference import artifact

SCHEMA = "sentence-encoder"
SCHEMA_VERSION = 1
ACTIVATION = "gelu_erf"
# precision.activations: float32 (default), int8 codes per token, or uint8 codes per token
# over its min..max (inference/text/spec.py).
ACTIVATIONS = ("float32", "int8_per_token", "uint8_asymmetric_per_token")
POOLING_DENOMINATOR_MIN = 1e-9  # sentence-transformers' clamp of the token count
NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's


# --- erf: float64, absolute error below 1e-11 -------------------------------------------
#
# |x| <= 2.5: erf(x) = x * P(x^2), P a degree-14 polynomial in u = x^2 (erf(x)/x is an
# entire function of u); 2.5 < |x|: erf(x) = sign(x) * (1 - exp(-x^2) * Q(|x|)), Q a
# degree-12 Chebyshev series on [2.5, 6] of erfc(x) * exp(x^2) (smooth, about
# 1/(x sqrt(pi))); beyond 6, erfc < 2e-17 and |x| is clamped to 6. Both are
# interpolated once, at import, from math.erf / math.erfc at Chebyshev points.
# tests check the error against math.erf on a dense grid.

_SPLIT, _TOP = 2.5, 6.0
_BLOCK = 1 << 14


def _erf_over_x(u):
    x = np.sqrt(u)
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, np.vectorize(math.erf)(x) / safe, 2.0 / math.sqrt(math.pi))


def _scaled_erfc(x):
    return np.vectorize(math.erfc)(x) * np.exp(x * x)


_INNER = np.polynomial.Chebyshev.interpolate(_erf_over_x, 14, domain=[0.0, _SPLIT ** 2]) \
    .convert(kind=np.polynomial.Polynomial, domain=[0.0, _SPLIT ** 2],
             window=[0.0, _SPLIT ** 2]).coef
_OUTER = np.polynomial.Chebyshev.interpolate(_scaled_erfc, 12, domain=[_SPLIT, _TOP])


def erf(x):
    """The error function of an array, elementwise, in float64."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    for start in range(0, flat_x.size, _BLOCK):  # blocks that stay in the CPU cache
        _erf_block(flat_x[start:start + _BLOCK], flat_out[start:start + _BLOCK])
    return out


def _erf_block(x, out):
    u = x * x
    out[:] = _INNER[-1]
    for coefficient in _INNER[-2::-1]:
        out *= u
        out += coefficient
    out *= x
    tail = np.abs(x) > _SPLIT
    if tail.any():
        far = np.minimum(np.abs(x[tail]), _TOP)
        out[tail] = np.copysign(1.0 - np.exp(-far * far) * _OUTER(far), x[tail])


def gelu(x):
    """Exact GELU, x * (1 + erf(x / sqrt(2))) / 2, in x's dtype."""
    return (0.5 * x * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))) \
        .astype(np.asarray(x).dtype)


# --- asymmetric activation codes -------------------------------------------------------

def quantize_asymmetric(x):
    """(codes, step, zero) of the last axis of float32 x, as the kernels code activations
    for "uint8_asymmetric_per_token": each row over lo..hi = min(0, min x)..max(0, max x)
    in 255 steps, step = (hi - lo) / 255, inv = 255 / (hi - lo), integer zero point
    zero = floor(-lo * inv + 0.5), codes floor(x * inv + (zero + 0.5)) clipped to 0..255,
    so x ~ (codes - zero) * step. A zero row, or one holding inf or NaN, is code 0 with
    step 0 and zero point 0. codes and zero float32 (integers); step and zero with a
    last axis of 1."""
    x = np.asarray(x, dtype=np.float32)
    finite = np.isfinite(x).all(axis=-1, keepdims=True)
    safe = np.where(finite, x, np.float32(0))
    low = np.minimum(np.min(safe, axis=-1, keepdims=True), np.float32(0))
    high = np.maximum(np.max(safe, axis=-1, keepdims=True), np.float32(0))
    with np.errstate(over="ignore", invalid="ignore"):
        span = high - low
        usable = finite & (span > 0) & (span <= np.float32(3.0e38))
        safe_span = np.where(usable, span, np.float32(1))
        inv = np.float32(255) / safe_span
        zero = np.minimum(np.floor(-low * inv + np.float32(0.5)), np.float32(255))
        codes = np.clip(np.floor(safe * inv + (zero + np.float32(0.5))), 0, 255)
    codes = np.where(usable, codes, np.float32(0))
    step = np.where(usable, safe_span / np.float32(255), np.float32(0))
    zero = np.where(usable, zero, np.float32(0))
    return codes.astype(np.float32), step.astype(np.float32), zero.astype(np.float32)


# --- the artifact --------------------------------------------------------------------

class SchemaError(ValueError):
    """The artifact is not a sentence-encoder this reference can run; says which field."""


def dequantize(tensors, name):
    """Tensor `name` of a decoded artifact as float32: int8 times its per-row `.scale`,
    float16 (decoded as 16-bit patterns) widened, float32 as is."""
    value = np.asarray(tensors[name])
    if value.dtype == np.int8:
        scale_name = name[:-len(".weight")] + ".scale"
        if scale_name not in tensors:
            raise SchemaError(f"int8 tensor {name!r} has no {scale_name!r}")
        scale = np.asarray(tensors[scale_name], dtype=np.float32)
        if scale.shape != value.shape[:1]:
            raise SchemaError(f"{scale_name!r} has shape {list(scale.shape)}, expected "
                              f"[{value.shape[0]}] (one scale per row of {name!r})")
        return value.astype(np.float32) * scale[:, None]
    if value.dtype == np.uint16:
        return value.view(np.float16).astype(np.float32)
    if value.dtype != np.float32:
        raise SchemaError(f"tensor {name!r} is {value.dtype}; weights are float32, float16 "
                          "or int8")
    return value.astype(np.float32)


def vocabulary(tensors):
    """The tokens in id order, from the `vocab` tensor."""
    return bytes(np.asarray(tensors["vocab"], dtype=np.uint8)).decode("utf-8").split("\n")


def _check_header(header):
    if header.get("schema") != SCHEMA or header.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"schema {header.get('schema')!r} version "
                          f"{header.get('schema_version')!r}; this reference runs {SCHEMA!r} "
                          f"version {SCHEMA_VERSION}")
    arch = header.get("architecture") or {}
    if arch.get("kind") != "bert" or arch.get("activation") != ACTIVATION:
        raise SchemaError(f"architecture {arch.get('kind')!r} with activation "
                          f"{arch.get('activation')!r}; this reference runs 'bert' with "
                          f"{ACTIVATION!r}")
    if (header.get("pooling") or {}).get("mode") != "mean" or header.get("normalize") != "l2":
        raise SchemaError(f"pooling {header.get('pooling')!r}, normalize "
                          f"{header.get('normalize')!r}; this reference does mean pooling "
                          "and L2 normalization")
    return arch


class ReferenceEncoder:
    """A sentence-encoder artifact's weights as float32 arrays, and the forward pass."""

    def __init__(self, header, tensors):
        self.header = header
        arch = _check_header(header)
        self.layers, self.heads = arch["layers"], arch["heads"]
        self.hidden, self.eps = arch["hidden"], float(arch["layer_norm_eps"])
        self.max_length = header["tokenizer"]["max_length"]
        self.dimension = header["output"]["dimension"]
        try:
            self.weights = {name: dequantize(tensors, name) for name in tensors
                            if name != "vocab" and not name.endswith(".scale")}
        except KeyError as err:
            raise SchemaError(f"missing tensor {err}") from err
        self.vocab_size = self.weights["embeddings.word.weight"].shape[0]
        activations = (header.get("precision") or {}).get("activations", "float32")
        if activations not in ACTIVATIONS:
            raise SchemaError(f"precision.activations is {activations!r}; this reference runs "
                              f"{', '.join(ACTIVATIONS)}")
        # int8_per_token / uint8_asymmetric_per_token: the layers' linear maps multiply
        # integer codes of each token's activations by the int8 weights, in integers
        # (codes as float64: exact sums).
        self.activations = activations
        self.int8_codes = {}
        if activations != ACTIVATIONS[0]:
            for name in tensors:
                if name.startswith("layers.") and name.endswith(".weight") and \
                        np.asarray(tensors[name]).ndim == 2:
                    if np.asarray(tensors[name]).dtype != np.int8:
                        raise SchemaError(f"{activations} activations need int8 layer "
                                          f"weights; {name!r} is not int8")
                    prefix = name[:-len(".weight")]
                    self.int8_codes[prefix] = (
                        np.asarray(tensors[name]).astype(np.float64).T,
                        np.asarray(tensors[prefix + ".scale"], dtype=np.float32))

    @classmethod
    def load(cls, path):
        """The encoder of the artifact file at `path` (verified by inference.artifact)."""
        loaded = artifact.read(path)
        return cls(loaded.header, loaded.tensors)

    @classmethod
    def from_artifact(cls, loaded):
        """The encoder of a decoded `inference.artifact.Artifact`."""
        return cls(loaded.header, loaded.tensors)

    def _norm(self, x, prefix):
        mean = x.mean(axis=-1, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=-1, keepdims=True)
        return centered / np.sqrt(var + self.eps) * self.weights[prefix + ".weight"] \
            + self.weights[prefix + ".bias"]

    def _linear(self, x, prefix):
        if prefix in self.int8_codes and self.activations == ACTIVATIONS[2]:
            return self._linear_uint8_asymmetric(x, prefix)
        if prefix in self.int8_codes:
            return self._linear_int8(x, prefix)
        return x @ self.weights[prefix + ".weight"].T + self.weights[prefix + ".bias"]

    def _linear_int8(self, x, prefix):
        """y = (q(x) @ q(W).T) * (sx * sw) + b: each token row on its own scale
        sx = max|x| / 127, codes floor(x * 127 / max|x| + 0.5) (halves up), all-zero
        rows (or non-finite maxima) coded 0 with scale 0; float32 like the kernels."""
        codes_w, scale_w = self.int8_codes[prefix]
        top = np.abs(x).max(axis=-1, keepdims=True)
        usable = (top > 0) & np.isfinite(top)
        safe = np.where(usable, top, np.float32(1))
        inv = np.float32(127) / safe
        codes = np.where(usable, np.floor(x * inv + np.float32(0.5)), np.float32(0))
        scale_x = np.where(usable, safe / np.float32(127), np.float32(0))
        sums = (codes.astype(np.float64) @ codes_w).astype(np.float32)
        return sums * (scale_x * scale_w) + self.weights[prefix + ".bias"]

    def _linear_uint8_asymmetric(self, x, prefix):
        """y = (q(x) @ q(W).T - zero * colsum(q(W))) * (sx * sw) + b: each token row
        coded by `quantize_asymmetric` (uint8 over its range, integer zero point); the
        integer part exact, then float32 like the kernels."""
        codes_w, scale_w = self.int8_codes[prefix]
        codes, step, zero = quantize_asymmetric(x)
        sums = codes.astype(np.float64) @ codes_w - zero.astype(np.float64) * \
            codes_w.sum(axis=0)
        return sums.astype(np.float32) * (step * scale_w) + self.weights[prefix + ".bias"]

    def _attention(self, h, mask, prefix):
        batch, length, hidden = h.shape
        size = hidden // self.heads
        qkv = self._linear(h, prefix + ".qkv").reshape(batch, length, 3, self.heads, size)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(size))
        # no-member: a false positive of the image's pylint (the image lints this file too).
        lowest = np.finfo(np.float32).min  # pylint: disable=no-member
        scores = scores + np.where(mask, np.float32(0), lowest)[:, None, None]
        scores = scores - scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        return self._linear(context, prefix + ".output")

    def token_states(self, ids, mask):
        """The last layer's hidden states, float32 [batch, length, hidden], of a padded
        id matrix and its boolean mask."""
        w = self.weights
        length = ids.shape[1]
        h = w["embeddings.word.weight"][ids] + w["embeddings.position.weight"][:length] \
            + w["embeddings.token_type.weight"][0]
        h = self._norm(h, "embeddings.norm")
        for i in range(self.layers):
            p = f"layers.{i}"
            h = self._norm(h + self._attention(h, mask, p + ".attention"), p + ".attention.norm")
            inner = gelu(self._linear(h, p + ".ffn.intermediate"))
            h = self._norm(h + self._linear(inner, p + ".ffn.output"), p + ".ffn.norm")
        return h

    def _check_ids(self, ids):
        rows = [list(row) for row in ids]
        for index, row in enumerate(rows):
            if len(row) > self.max_length:
                raise ValueError(f"sentence {index} has {len(row)} token ids; the model takes "
                                 f"at most {self.max_length} (truncate when tokenizing)")
            bad = [t for t in row if isinstance(t, bool) or not isinstance(t, (int, np.integer))
                   or not 0 <= t < self.vocab_size]
            if bad:
                raise ValueError(f"sentence {index} has token ids outside 0..{self.vocab_size - 1}"
                                 f": {bad[:5]}")
        return rows

    def embed(self, ids, batch_size=32):
        """L2-normalized mean-pooled embeddings, float32 [len(ids), dimension], of token id
        lists. Sentences are run `batch_size` at a time in order of length (less
        padding), each batch padded to its longest sentence; rows come back in the
        order given."""
        rows = self._check_ids(ids)
        out = np.zeros((len(rows), self.dimension), dtype=np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(rows), batch_size):
            chosen = order[start:start + batch_size]
            out[chosen] = self.embed_batch([rows[i] for i in chosen])
        return out

    def embed_batch(self, rows):
        """The embeddings of id lists run as one padded batch."""
        length = max(1, max(len(row) for row in rows))
        padded = np.zeros((len(rows), length), dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=bool)
        for i, row in enumerate(rows):
            padded[i, :len(row)] = row
            mask[i, :len(row)] = True
        states = self.token_states(padded, mask)
        summed = (states * mask[:, :, None]).sum(axis=1)
        counts = np.maximum(mask.sum(axis=1, keepdims=True).astype(np.float32),
                            np.float32(POOLING_DENOMINATOR_MIN))
        pooled = summed / counts
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), NORMALIZE_EPS)
        return pooled / norms
