"""What the tokenizer does beyond the corpus: limits, bad input, settings it refuses."""

import array
import os
import re
import subprocess
import sys
import threading

import pytest

from inference import artifact, errors
from inference.text.tests import tokenizer_data
from inference.text.tokenizer import WordPieceTokenizer

CLS, SEP, UNK, MASK = 101, 102, 100, 103


@pytest.fixture(name="tokenizer", scope="module")
def fixture_tokenizer():
    """The model's tokenizer."""
    return tokenizer_data.tokenizer()


@pytest.mark.parametrize("text", ["", " ", "\t\n\r ", "\u3000\u00a0\u2003", "\x00\u200b\ufeff"])
def test_empty_and_whitespace_only_text_gives_cls_sep(tokenizer, text):
    assert list(tokenizer.encode(text)) == [CLS, SEP]


def test_ids_are_an_int32_array(tokenizer):
    ids = tokenizer.encode("Hello, world!")
    assert isinstance(ids, array.array) and ids.typecode == "i" and ids.itemsize == 4
    assert list(ids) == [CLS, 7592, 1010, 2088, 999, SEP]


def test_truncation_keeps_the_first_254_pieces(tokenizer):
    words = [f"w{i % 10}" for i in range(1000)]  # "w3" is one piece
    ids = tokenizer.encode(" ".join(words))
    assert len(ids) == tokenizer.max_length == 256
    assert ids[0] == CLS and ids[-1] == SEP
    assert list(ids) == list(tokenizer.encode(" ".join(words[:254])))


def test_text_of_exactly_254_pieces_is_not_cut(tokenizer):
    assert len(tokenizer.encode("a " * 254)) == 256
    assert list(tokenizer.encode("a " * 253 + "[MASK]"))[-2:] == [MASK, SEP]
    assert list(tokenizer.encode("a " * 254 + "[MASK]"))[-2:] == [1037, SEP]


def test_words_over_100_characters_are_one_unk(tokenizer):
    assert list(tokenizer.encode("x" * 101)) == [CLS, UNK, SEP]
    assert UNK not in tokenizer.encode("x" * 100)
    # Characters are counted after normalization: "é" is one code point, "e" + U+0301 two.
    assert UNK not in tokenizer.encode("é" * 100)
    assert list(tokenizer.encode("e\u0301" * 60)) == list(tokenizer.encode("e" * 60))


def test_literal_special_tokens_are_matched_case_sensitively_anywhere(tokenizer):
    assert list(tokenizer.encode("hello[MASK]world")) == [CLS, 7592, MASK, 2088, SEP]
    assert list(tokenizer.encode("[CLS]")) == [CLS, CLS, SEP]
    assert MASK not in tokenizer.encode("[mask] [ MASK ]")


def test_token_count_is_the_number_of_ids(tokenizer):
    assert tokenizer.token_count("Hello, world!") == 6
    assert tokenizer.token_count("") == 2
    assert tokenizer.token_count("a " * 5000) == 256


@pytest.mark.parametrize("value, named", [
    (None, "NoneType"), (b"bytes", "bytes; decode it to str first"), (42, "int"),
    (["a list"], "list"), (array.array("i"), "array")])
def test_encode_refuses_what_is_not_a_str_naming_it(tokenizer, value, named):
    with pytest.raises(TypeError, match=f"text must be a str, got {named}"):
        tokenizer.encode(value)


def test_encode_batch_refuses_a_bare_str_and_names_a_bad_element(tokenizer):
    with pytest.raises(TypeError, match=r"got str; for one text call encode\(text\)"):
        tokenizer.encode_batch("one text")
    with pytest.raises(TypeError, match="text 1 must be a str, got bytes"):
        tokenizer.encode_batch(["fine", b"not fine"])
    assert not tokenizer.encode_batch([])


def test_a_lone_surrogate_is_an_input_error_naming_where(tokenizer):
    with pytest.raises(errors.InputError, match=re.escape("lone surrogate U+D83D at index 3")):
        tokenizer.encode("abc\ud83d")
    with pytest.raises(errors.InputError, match=re.escape(
            "text 1 holds a lone surrogate U+DC00 at index 0")):
        tokenizer.encode_batch(["ok", "\udc00" + "a " * 1000])


def test_threads_sharing_one_tokenizer_get_the_same_ids(tokenizer):
    texts = tokenizer_data.corpus()
    expected = [list(ids) for ids in tokenizer.encode_batch(texts)]
    results = [None] * 4

    def work(slot):
        results[slot] = [list(ids) for ids in tokenizer.encode_batch(texts)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == expected for result in results)


def _artifact(tokens, settings, vocab=None):
    if vocab is None:
        vocab = array.array("B", "\n".join(tokens).encode("utf-8"))
    return artifact.decode(artifact.encode({"tokenizer": settings}, {"vocab": vocab}))


def test_from_artifact_reads_the_vocab_tensor_and_settings(tokenizer):
    loaded = WordPieceTokenizer.from_artifact(
        _artifact(tokenizer_data.vocab_tokens(), tokenizer_data.settings()))
    assert loaded.vocab_size == 30522
    assert (loaded.pad_id, loaded.unk_id, loaded.cls_id, loaded.sep_id) == (0, UNK, CLS, SEP)
    text = "Ünïcödé, 中文 and [MASK] 🙂"
    assert list(loaded.encode(text)) == list(tokenizer.encode(text))


def test_from_artifact_refuses_a_missing_or_wrong_vocab():
    tokens, settings = tokenizer_data.vocab_tokens(), tokenizer_data.settings()
    with pytest.raises(errors.CorruptArtifactError, match="not 1-D uint8"):
        WordPieceTokenizer.from_artifact(_artifact(tokens, settings, array.array("i", [1])))
    with pytest.raises(errors.CorruptArtifactError, match="not UTF-8"):
        WordPieceTokenizer.from_artifact(_artifact(tokens, settings, array.array("B", [0xFF])))
    with pytest.raises(errors.CorruptArtifactError, match="no \"tokenizer\" settings"):
        WordPieceTokenizer.from_artifact(artifact.decode(artifact.encode({}, {})))


@pytest.mark.parametrize("field, value", [
    ("kind", "bpe"), ("lowercase", False), ("strip_accents", False), ("clean_text", False),
    ("handle_chinese_chars", False), ("truncation", "left")])
def test_settings_it_does_not_implement_are_refused(field, value):
    settings = tokenizer_data.settings()
    settings[field] = value
    with pytest.raises(errors.IncompatibleArtifactError,
                       match=f"{field} is {type(value).__name__} {value!r}; this tokenizer "
                             "implements only"):
        WordPieceTokenizer(list(tokenizer_data.vocab_tokens()), settings)


def test_cased_text_with_accents_stripped_is_refused_naming_both_fields():
    settings = tokenizer_data.settings()
    settings["lowercase"] = False
    with pytest.raises(errors.IncompatibleArtifactError) as caught:
        WordPieceTokenizer(list(tokenizer_data.vocab_tokens()), settings)
    assert "lowercase is bool False" in str(caught.value)
    settings["strip_accents"], settings["vocab_case"] = False, "upper"
    with pytest.raises(errors.IncompatibleArtifactError) as caught:
        WordPieceTokenizer(list(tokenizer_data.vocab_tokens()), settings)
    message = str(caught.value)
    assert "lowercase" in message and "strip_accents" in message
    assert "unknown fields ['vocab_case']" in message


@pytest.mark.parametrize("change, message", [
    ({"max_length": 2}, "max_length is int 2, not an integer >= 3"),
    ({"max_length": "256"}, "max_length is str '256'"),
    ({"unk_token": "[NOPE]"}, "unk_token is str '[NOPE]', which is not a token"),
    ({"special_tokens": "[CLS]"}, "special_tokens is str '[CLS]', not a list"),
    ({"special_tokens": ["[CLS]", "[CLS]"]}, "special_tokens repeats a token"),
    ({"continuing_subword_prefix": ""}, "continuing_subword_prefix is str '', not a non-empty"),
    ({"max_input_chars_per_word": 0}, "max_input_chars_per_word is int 0"),
    ({"max_input_chars_per_word": True}, "max_input_chars_per_word is bool True"),
])
def test_malformed_settings_are_refused_naming_the_field(change, message):
    settings = tokenizer_data.settings()
    settings.update(change)
    with pytest.raises(errors.CorruptArtifactError, match=re.escape(message)):
        WordPieceTokenizer(list(tokenizer_data.vocab_tokens()), settings)


def test_missing_settings_and_repeated_tokens_are_refused():
    settings = tokenizer_data.settings()
    del settings["max_length"]
    with pytest.raises(errors.CorruptArtifactError, match="max_length is missing"):
        WordPieceTokenizer(list(tokenizer_data.vocab_tokens()), settings)
    tokens = list(tokenizer_data.vocab_tokens()) + ["hello"]
    with pytest.raises(errors.CorruptArtifactError, match="'hello' is both id 7592 and id 30522"):
        WordPieceTokenizer(tokens, tokenizer_data.settings())
    with pytest.raises(errors.CorruptArtifactError, match="expected the header's"):
        WordPieceTokenizer(list(tokenizer_data.vocab_tokens()), None)


CHILD = r"""
import importlib.util
import sys
sys.path.insert(0, sys.argv[1])
assert importlib.util.find_spec("numpy") is None, "numpy is importable in the child"
from inference.text.tokenizer import WordPieceTokenizer
tokens = sys.stdin.read().split("\n")
tokenizer = WordPieceTokenizer(tokens, eval(sys.argv[2]))
print(list(tokenizer.encode("Hello, world!")))
"""


def test_the_tokenizer_runs_where_numpy_cannot_be_imported():
    import inference  # pylint: disable=import-outside-toplevel
    root = os.path.dirname(os.path.dirname(os.path.abspath(inference.__file__)))
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, root, repr(tokenizer_data.settings())],
        input="\n".join(tokenizer_data.vocab_tokens()), capture_output=True, text=True,
        check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([CLS, 7592, 1010, 2088, 999, SEP])
