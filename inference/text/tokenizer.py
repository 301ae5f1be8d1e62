"""The WordPiece tokenizer of BERT models: text in, token ids out, as Hugging Face `tokenizers`.

    from inference import artifact
    from inference.text.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_artifact(artifact.read("minilm.model"))
    tokenizer.encode("Hello, world!")          # array('i', [101, 7592, 1010, 2088, 999, 102])
    tokenizer.encode_batch(["a", "b c"])        # [array('i', ...), array('i', ...)]

The ids are those of `tokenizers` with the model's tokenizer.json, as
sentence-transformers calls it: [CLS] pieces [SEP], truncated on the right to
`max_length` ids. Literal special tokens in the text ("[CLS]", "[MASK]", ...)
are matched case-sensitively, anywhere, before normalization, and become
their ids, as `tokenizers` does. Empty or whitespace-only text gives
[CLS] [SEP].

Everything comes from the artifact: the vocabulary (the `vocab` tensor: UTF-8
tokens in id order joined by newlines) and the header's "tokenizer" settings.
Settings this code does not implement are refused when the tokenizer is made,
never approximated. No numpy: the runtime image has none. The tokenizer holds
no mutable state; share one between threads (`encode` of long texts and
`encode_batch` release the GIL).
"""

import array

from inference import errors
from inference.text import _tokenizer

# The one configuration implemented (BertNormalizer with lower-casing, accents
# stripped, controls cleaned, CJK ideographs isolated; BertPreTokenizer).
_FIXED = {
    "kind": "wordpiece",
    "lowercase": True,
    "strip_accents": True,
    "clean_text": True,
    "handle_chinese_chars": True,
    "truncation": "right",
}
_TOKEN_FIELDS = ("unk_token", "cls_token", "sep_token", "pad_token")
_FIELDS = set(_FIXED) | set(_TOKEN_FIELDS) | {
    "special_tokens", "continuing_subword_prefix", "max_input_chars_per_word", "max_length"}
# The C word buffer holds 1,024 code points; longer words must be [UNK].
MAX_INPUT_CHARS_PER_WORD = 1000


def _describe(value):
    return f"{type(value).__name__} {value!r}"[:80]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_settings(settings, vocab_ids):
    """(problems, unsupported): what is malformed, and what is well-formed but not implemented."""
    problems, unsupported = [], []
    unknown = sorted(set(settings) - _FIELDS)
    if unknown:
        unsupported.append(f"unknown fields {unknown}: this tokenizer implements only "
                           f"{sorted(_FIELDS)}")
    for key in sorted(_FIELDS - set(settings)):
        problems.append(f"{key} is missing")
    for key, wanted in _FIXED.items():
        if key in settings and settings[key] != wanted:
            unsupported.append(f"{key} is {_describe(settings[key])}; this tokenizer implements "
                               f"only {wanted!r}")
    for key in _TOKEN_FIELDS:
        token = settings.get(key)
        if key in settings and not (isinstance(token, str) and token in vocab_ids):
            problems.append(f"{key} is {_describe(token)}, which is not a token of the "
                            f"vocabulary")
    specials = settings.get("special_tokens")
    if "special_tokens" in settings:
        if not isinstance(specials, list):
            problems.append(f"special_tokens is {_describe(specials)}, not a list of tokens")
        else:
            for token in specials:
                if not (isinstance(token, str) and token and token in vocab_ids):
                    problems.append(f"special_tokens holds {_describe(token)}, which is not a "
                                    "token of the vocabulary")
            if len(set(map(repr, specials))) != len(specials):
                problems.append("special_tokens repeats a token")
    prefix = settings.get("continuing_subword_prefix")
    if "continuing_subword_prefix" in settings and not (isinstance(prefix, str) and prefix):
        problems.append(f"continuing_subword_prefix is {_describe(prefix)}, not a non-empty "
                        "string")
    chars = settings.get("max_input_chars_per_word")
    if "max_input_chars_per_word" in settings and not (
            _is_int(chars) and 1 <= chars <= MAX_INPUT_CHARS_PER_WORD):
        problems.append(f"max_input_chars_per_word is {_describe(chars)}, not an integer from 1 "
                        f"to {MAX_INPUT_CHARS_PER_WORD}")
    length = settings.get("max_length")
    if "max_length" in settings and not (_is_int(length) and length >= 3):
        problems.append(f"max_length is {_describe(length)}, not an integer >= 3 (room for "
                        "[CLS], one piece and [SEP])")
    return problems, unsupported


class WordPieceTokenizer:
    """BERT's uncased WordPiece tokenizer over one vocabulary (see the module docstring)."""

    def __init__(self, vocab_tokens, settings):
        """vocab_tokens: the tokens in id order; settings: an artifact header's "tokenizer".

        Raises errors.CorruptArtifactError for malformed settings or vocabulary and
        errors.IncompatibleArtifactError for settings this code does not implement,
        naming every problem at once.
        """
        if not isinstance(vocab_tokens, (list, tuple)) or not all(
                isinstance(t, str) for t in vocab_tokens):
            raise errors.CorruptArtifactError(
                f"tokenizer vocabulary: expected a list of str tokens in id order, got "
                f"{type(vocab_tokens).__name__}")
        if not isinstance(settings, dict):
            raise errors.CorruptArtifactError(
                f"tokenizer settings: expected the header's \"tokenizer\" object (a dict), got "
                f"{type(settings).__name__}")
        vocab_ids = {}
        for i, token in enumerate(vocab_tokens):
            if token in vocab_ids:
                raise errors.CorruptArtifactError(
                    f"tokenizer vocabulary: token {token!r} is both id {vocab_ids[token]} and "
                    f"id {i}; the vocabulary must list each token once")
            vocab_ids[token] = i
        problems, unsupported = _check_settings(settings, vocab_ids)
        if problems:
            raise errors.CorruptArtifactError(
                "tokenizer settings: " + "; ".join(problems + unsupported)
                + ". Rebuild the artifact with the model's converter.")
        if unsupported:
            raise errors.IncompatibleArtifactError(
                "tokenizer settings: " + "; ".join(unsupported)
                + ". Use an artifact made for this library, or extend inference/text/tokenizer.py"
                " (and its tests) to support them.")
        self.settings = dict(settings)
        self.vocab_size = len(vocab_tokens)
        self.max_length = settings["max_length"]
        self.unk_id = vocab_ids[settings["unk_token"]]
        self.cls_id = vocab_ids[settings["cls_token"]]
        self.sep_id = vocab_ids[settings["sep_token"]]
        self.pad_id = vocab_ids[settings["pad_token"]]
        self._vocab = _tokenizer.Vocab(
            list(vocab_tokens), settings["continuing_subword_prefix"],
            {t: vocab_ids[t] for t in settings["special_tokens"]},
            self.unk_id, self.cls_id, self.sep_id, self.max_length - 2,
            settings["max_input_chars_per_word"])

    @classmethod
    def from_artifact(cls, model):
        """The tokenizer of a decoded artifact (`inference.artifact.read`/`decode`)."""
        header, tensors = model.header, model.tensors
        if "tokenizer" not in header:
            raise errors.CorruptArtifactError(
                "artifact header has no \"tokenizer\" settings; is this a sentence-encoder "
                "artifact?")
        vocab = tensors.get("vocab")
        if vocab is None or vocab.format not in ("B", "<B", "=B", "@B") or vocab.ndim != 1:
            raise errors.CorruptArtifactError(
                "artifact tensor \"vocab\" is missing or not 1-D uint8 (the tokens as UTF-8, "
                "joined by newlines)")
        try:
            tokens = bytes(vocab).decode("utf-8").split("\n")
        except UnicodeDecodeError as err:
            raise errors.CorruptArtifactError(
                f"artifact tensor \"vocab\" is not UTF-8 ({err})") from err
        return cls(tokens, header["tokenizer"])

    def encode(self, text):
        """[CLS] pieces [SEP] of `text` (a str): an array('i') of at most max_length ids."""
        if not isinstance(text, str):
            raise TypeError(_not_text(text, "text"))
        ids = _tokenizer.encode(self._vocab, text, _int32_array)
        if isinstance(ids, int):
            raise errors.InputError(_surrogate(text, ids, "the text"))
        return ids

    def encode_batch(self, texts):
        """encode() of each text of a list or tuple of str: a list of array('i')."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)):
            raise TypeError(
                f"encode_batch takes a list or tuple of str, got {type(texts).__name__}"
                + ("; for one text call encode(text)" if isinstance(texts, str) else ""))
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(_not_text(text, f"text {i}"))
        result = _tokenizer.encode_batch(self._vocab, list(texts), _int32_array)
        if isinstance(result, tuple):
            bad, at = result
            raise errors.InputError(_surrogate(texts[bad], at, f"text {bad}"))
        return result

    def token_count(self, text):
        """How many ids encode(text) gives (its cost when batching by tokens)."""
        return len(self.encode(text))


def _int32_array():
    return array.array("i")


def _not_text(value, what):
    hint = "; decode it to str first" if isinstance(value, (bytes, bytearray)) else ""
    return f"{what} must be a str, got {type(value).__name__}{hint}"


def _surrogate(text, at, what):
    return (f"{what} holds a lone surrogate U+{ord(text[at]):04X} at index {at}, which is not "
            "valid Unicode; send well-formed UTF-8 (a JSON \\ud83d-style escape must come "
            "with its pair)")


if array.array("i").itemsize != 4:
    raise ImportError("inference.text.tokenizer returns ids as array('i'), which must hold "
                      "32-bit integers on this platform")
