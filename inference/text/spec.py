"""The "sentence-encoder" artifact schema, version 1: checked before any kernel sees it.

    from inference import artifact
    from inference.text import spec

    loaded = artifact.read(path)
    checked = spec.sentence_encoder_spec(loaded, source=path)
    checked.dims["hidden"], checked.weights["layers.0.attention.qkv.weight"], ...

The schema is written down in models/minilm (the conversion that writes it)
and in inference/text/README.md. `sentence_encoder_spec` checks every header
field and every tensor (name, dtype, shape, the precision rule: a 2-D weight
is float32, float16 or int8 with a float32 per-row `.scale`; 1-D tensors are
float32) and reports every problem it finds at once. No numpy: this runs in
the production image.
"""

import dataclasses
import math

from inference import errors

SCHEMA = "sentence-encoder"
SCHEMA_VERSION = 1
WEIGHT_DTYPES = ("float32", "float16", "int8")
# precision.activations (optional, default "float32"): "int8_per_token" runs the
# layers' linear maps on int8 codes of the activations, each token row on its
# own scale (max |x| / 127), in integer arithmetic; "uint8_asymmetric_per_token"
# on uint8 codes of each token row over its own range (min(0, min x)..max(0, max x))
# in 255 steps with an integer zero point (x ~ (code - zero) * step). Both integer
# modes need every layer
# weight int8. Artifacts without the field (or with an older mode) read as before.
ACTIVATIONS = ("float32", "int8_per_token", "uint8_asymmetric_per_token")
# What the kernels need (inference/text/_encoder_kernels.h): linear layers in
# whole 32-column panels, attention heads in whole 16-float vectors.
COLUMN_MULTIPLE = 32
HEAD_DIM_MULTIPLE = 16

_ARCHITECTURE_COUNTS = ("layers", "hidden", "heads", "intermediate", "max_positions",
                        "vocab_size", "type_vocab_size")
_TOKENIZER_FLAGS = ("lowercase", "strip_accents", "clean_text", "handle_chinese_chars")
_TOKENIZER_TOKENS = ("unk_token", "cls_token", "sep_token", "pad_token")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What the runtime needs from a verified sentence-encoder artifact."""

    dims: dict      # architecture counts, plus "eps" (layer norm epsilon)
    tokenizer: dict  # the header's tokenizer settings, as written
    weights: dict   # {2-D weight name: (bytes view, dtype name, scale bytes view or None)}
    vectors: dict   # {1-D float32 tensor name: bytes view}
    vocab: memoryview  # uint8: the tokens in id order, joined by "\n"
    header: dict
    int8_activations: bool = False  # precision.activations is an integer mode
    activations: str = "float32"    # precision.activations, one of ACTIVATIONS


def expected_tensors(dims):
    """{name: shape} of every tensor a model of these dimensions has (scales aside)."""
    hidden, inter = dims["hidden"], dims["intermediate"]
    shapes = {
        "embeddings.word.weight": (dims["vocab_size"], hidden),
        "embeddings.position.weight": (dims["max_positions"], hidden),
        "embeddings.token_type.weight": (dims["type_vocab_size"], hidden),
        "embeddings.norm.weight": (hidden,),
        "embeddings.norm.bias": (hidden,),
    }
    for i in range(dims["layers"]):
        p = f"layers.{i}."
        shapes.update({
            p + "attention.qkv.weight": (3 * hidden, hidden),
            p + "attention.qkv.bias": (3 * hidden,),
            p + "attention.output.weight": (hidden, hidden),
            p + "attention.output.bias": (hidden,),
            p + "attention.norm.weight": (hidden,),
            p + "attention.norm.bias": (hidden,),
            p + "ffn.intermediate.weight": (inter, hidden),
            p + "ffn.intermediate.bias": (inter,),
            p + "ffn.output.weight": (hidden, inter),
            p + "ffn.output.bias": (hidden,),
            p + "ffn.norm.weight": (hidden,),
            p + "ffn.norm.bias": (hidden,),
        })
    return shapes


def sentence_encoder_spec(loaded, source="<artifact>"):
    """Checks a decoded artifact (`inference.artifact.Artifact`) against the schema.

    Raises `errors.IncompatibleArtifactError` when it is another schema or
    version, or needs dimensions these kernels cannot run, and
    `errors.CorruptArtifactError` listing every missing or malformed field and
    tensor otherwise. Returns an `EncoderSpec`.
    """
    header = loaded.header
    schema, version = header.get("schema"), header.get("schema_version")
    if schema != SCHEMA:
        raise errors.IncompatibleArtifactError(
            f"{source} is a {schema!r} artifact, not a {SCHEMA!r} one: point the sentence "
            "encoder at a sentence-embedding model artifact.")
    if version != SCHEMA_VERSION:
        raise errors.IncompatibleArtifactError(
            f"{source} uses {SCHEMA} schema version {version!r}; this library reads version "
            f"{SCHEMA_VERSION}. Rebuild the artifact with this revision's conversion, or deploy "
            "the inference library that matches it.")
    problems = []
    dims = _check_header(header, problems)
    weights, vectors, vocab = {}, {}, None
    if dims is not None:
        weights, vectors, vocab = _check_tensors(loaded.tensors, dims, problems)
        _check_activations(header, weights, problems)
    if problems:
        listed = "\n  - ".join(problems)
        raise errors.CorruptArtifactError(
            f"{source} is not a valid {SCHEMA} v{SCHEMA_VERSION} artifact:\n  - {listed}\n"
            "Rebuild it with the model's conversion target.")
    _check_kernel_limits(dims, source)
    activations = header["precision"].get("activations", ACTIVATIONS[0])
    return EncoderSpec(dims=dims, tokenizer=dict(header["tokenizer"]), weights=weights,
                       vectors=vectors, vocab=vocab, header=header,
                       int8_activations=activations != ACTIVATIONS[0],
                       activations=activations)


def _check_header(header, problems):
    """Checks the header fields; returns the dimensions (None when unusable)."""
    sections = {}
    for key in ("model", "architecture", "tokenizer", "pooling", "output", "precision",
                "metrics"):
        value = header.get(key)
        if not isinstance(value, dict):
            problems.append(f"header field {key!r} is missing or not a JSON object")
            value = {}
        sections[key] = value
    for section, key in (("model", "name"), ("model", "variant"), ("precision", "name"),
                         ("precision", "description")):
        if not _is_text(sections[section].get(key)):
            problems.append(f"{section}.{key} must be a non-empty string")
    if sections["pooling"].get("mode") != "mean":
        problems.append(f"pooling.mode is {sections['pooling'].get('mode')!r}; only 'mean' "
                        "is supported")
    if header.get("normalize") != "l2":
        problems.append(f"normalize is {header.get('normalize')!r}; only 'l2' is supported")
    dims = _check_architecture(sections["architecture"], problems)
    dimension = sections["output"].get("dimension")
    if "hidden" in dims and dimension != dims["hidden"]:
        problems.append(f"output.dimension is {dimension!r}, expected architecture.hidden "
                        f"({dims['hidden']})")
    _check_tokenizer(sections["tokenizer"], dims, problems)
    complete = len(dims) == len(_ARCHITECTURE_COUNTS) + 1 and dims["hidden"] % dims["heads"] == 0
    return dims if complete else None


def _check_architecture(arch, problems):
    """The architecture's dimensions that are valid (all of them when nothing is wrong)."""
    for key, value in (("kind", "bert"), ("activation", "gelu_erf")):
        if arch.get(key) != value:
            problems.append(f"architecture.{key} is {arch.get(key)!r}; only {value!r} is "
                            "supported")
    dims = {}
    for key in _ARCHITECTURE_COUNTS:
        value = arch.get(key)
        if not _is_count(value) or value < 1:
            problems.append(f"architecture.{key} must be a positive integer, got {value!r}")
        else:
            dims[key] = value
    eps = arch.get("layer_norm_eps")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) \
            or not (math.isfinite(eps) and 0 < eps < 1):
        problems.append(f"architecture.layer_norm_eps must be a number in (0, 1), got {eps!r}")
    else:
        dims["eps"] = float(eps)
    if "hidden" in dims and "heads" in dims and dims["hidden"] % dims["heads"]:
        problems.append(f"architecture.hidden ({dims['hidden']}) is not a multiple of "
                        f"architecture.heads ({dims['heads']})")
    return dims


def _check_tokenizer(tok, dims, problems):
    for key, value in (("kind", "wordpiece"), ("truncation", "right")):
        if tok.get(key) != value:
            problems.append(f"tokenizer.{key} is {tok.get(key)!r}; only {value!r} is supported")
    for key in _TOKENIZER_FLAGS:
        if not isinstance(tok.get(key), bool):
            problems.append(f"tokenizer.{key} must be true or false")
    for key in _TOKENIZER_TOKENS + ("continuing_subword_prefix",):
        if not _is_text(tok.get(key)):
            problems.append(f"tokenizer.{key} must be a non-empty string")
    special = tok.get("special_tokens")
    if not (isinstance(special, list) and all(_is_text(t) for t in special)):
        problems.append("tokenizer.special_tokens must be a list of strings")
    for key in ("max_input_chars_per_word", "max_length"):
        if not _is_count(tok.get(key)) or tok.get(key) < 1:
            problems.append(f"tokenizer.{key} must be a positive integer, got {tok.get(key)!r}")
    max_length = tok.get("max_length")
    if _is_count(max_length) and "max_positions" in dims and not \
            2 <= max_length <= dims["max_positions"]:
        problems.append(f"tokenizer.max_length is {max_length}, outside 2.."
                        f"{dims['max_positions']} (architecture.max_positions)")


def _check_tensors(tensors, dims, problems):
    """Checks names, dtypes and shapes; returns (weights, vectors, vocab)."""
    weights, vectors, seen = {}, {}, set()
    vocab = tensors.get("vocab")
    seen.add("vocab")
    if vocab is None:
        problems.append("tensor 'vocab' is missing")
    elif vocab.format != "B" or vocab.ndim != 1:
        problems.append(f"tensor 'vocab' is {_describe(vocab)}, expected uint8 [n]")
    else:
        count = bytes(vocab).count(b"\n") + 1 if len(vocab) else 0
        if count != dims["vocab_size"]:
            problems.append(f"tensor 'vocab' holds {count} tokens, expected "
                            f"architecture.vocab_size ({dims['vocab_size']})")
    for name, shape in expected_tensors(dims).items():
        view = tensors.get(name)
        seen.add(name)
        if view is None:
            problems.append(f"tensor {name!r} is missing")
            continue
        if len(shape) == 1:
            if _dtype(view) != "float32" or tuple(view.shape) != shape:
                problems.append(f"tensor {name!r} is {_describe(view)}, expected float32 "
                                f"{list(shape)}")
            elif not all(math.isfinite(v) for v in view):
                problems.append(f"tensor {name!r} holds NaN or infinite values")
            else:
                vectors[name] = view.cast("B")
            continue
        checked = _check_weight(tensors, name, view, shape, seen, problems)
        if checked is not None:
            weights[name] = checked
    unexpected = sorted(set(tensors) - seen)
    if unexpected:
        problems.append(f"unexpected tensors {unexpected} (a scale belongs only to an int8 "
                        "weight)")
    return weights, vectors, vocab


def _check_weight(tensors, name, view, shape, seen, problems):
    """A 2-D weight as (bytes view, dtype, scale bytes view or None), or None if invalid."""
    dtype = _dtype(view)
    if dtype not in WEIGHT_DTYPES or tuple(view.shape) != shape:
        problems.append(f"tensor {name!r} is {_describe(view)}, expected "
                        f"{' / '.join(WEIGHT_DTYPES)} {list(shape)}")
        return None
    if dtype != "int8":
        return view.cast("B"), dtype, None
    scale_name = name[:-len(".weight")] + ".scale"
    scale = tensors.get(scale_name)
    seen.add(scale_name)
    if scale is None:
        problems.append(f"tensor {scale_name!r} is missing: int8 {name!r} needs its float32 "
                        "per-row scales")
    elif _dtype(scale) != "float32" or tuple(scale.shape) != shape[:1]:
        problems.append(f"tensor {scale_name!r} is {_describe(scale)}, expected float32 "
                        f"[{shape[0]}]")
    elif not all(math.isfinite(v) and v >= 0 for v in scale):
        problems.append(f"tensor {scale_name!r} holds negative, NaN or infinite scales")
    else:
        return view.cast("B"), dtype, scale.cast("B")
    return None


def _check_activations(header, weights, problems):
    precision = header.get("precision")
    activations = precision.get("activations", "float32") if isinstance(precision, dict) \
        else "float32"
    if not isinstance(activations, str) or activations not in ACTIVATIONS:
        problems.append(f"precision.activations is {activations!r}; expected one of "
                        f"{list(ACTIVATIONS)} (an artifact of a newer conversion needs the "
                        "inference library that matches it)")
    elif activations != ACTIVATIONS[0]:
        wide = sorted(name for name, (_, dtype, _) in weights.items()
                      if name.startswith("layers.") and dtype != "int8")
        if wide:
            problems.append(f"precision.activations {activations!r} needs int8 layer weights; "
                            f"{wide[0]} is not int8")


def _check_kernel_limits(dims, source):
    head_dim = dims["hidden"] // dims["heads"]
    if dims["hidden"] % COLUMN_MULTIPLE or dims["intermediate"] % COLUMN_MULTIPLE \
            or head_dim % HEAD_DIM_MULTIPLE:
        raise errors.IncompatibleArtifactError(
            f"{source}: this runtime's kernels need architecture.hidden and .intermediate in "
            f"multiples of {COLUMN_MULTIPLE} and a head size (hidden / heads) in multiples of "
            f"{HEAD_DIM_MULTIPLE}; the model has hidden {dims['hidden']}, intermediate "
            f"{dims['intermediate']}, head size {head_dim}.")


def _dtype(view):
    """The header dtype name of a decoded tensor view (float16 decodes as 'H')."""
    return {"f": "float32", "H": "float16", "b": "int8", "B": "uint8", "i": "int32"}.get(
        view.format)


def _describe(view):
    return f"{_dtype(view) or view.format} {list(view.shape)}"


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_text(value):
    return isinstance(value, str) and bool(value)
