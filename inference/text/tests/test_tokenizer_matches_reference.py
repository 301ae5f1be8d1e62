"""The tokenizer gives Hugging Face's ids on every text of the corpus.

The reference ids were computed once by `tokenizers` itself
(data/compute_tokenizer_reference.py) and are committed; this test never
imports tokenizers.
"""

import hashlib

from inference.text.tests import tokenizer_data


def test_reference_was_computed_from_this_corpus():
    provenance, ids = tokenizer_data.reference()
    assert provenance["corpus_sha256"] == hashlib.sha256(
        tokenizer_data.corpus_bytes()).hexdigest(), (
        "tokenizer_corpus.jsonl changed since its reference ids were computed: rerun "
        "data/compute_tokenizer_reference.py")
    assert len(ids) == provenance["texts"] == len(tokenizer_data.corpus())
    assert provenance["max_length"] == tokenizer_data.SETTINGS["max_length"]


def test_every_corpus_text_gives_the_reference_ids():
    tokenizer = tokenizer_data.tokenizer()
    _, expected = tokenizer_data.reference()
    wrong = [(line, text[:60]) for line, (text, ids) in
             enumerate(zip(tokenizer_data.corpus(), expected), start=1)
             if list(tokenizer.encode(text)) != ids]
    assert not wrong, f"{len(wrong)} corpus lines differ, the first ones: {wrong[:5]}"


def test_encode_batch_gives_the_ids_of_encode():
    tokenizer = tokenizer_data.tokenizer()
    texts = tokenizer_data.corpus()
    assert len(texts) > 2 * 256  # batches are tokenized 256 texts at a time
    assert [list(ids) for ids in tokenizer.encode_batch(texts)] == [
        list(tokenizer.encode(text)) for text in texts]


def test_corpus_holds_the_awkward_cases():
    texts = tokenizer_data.corpus()
    assert len(texts) >= 1000
    assert "" in texts and "   " in texts
    assert max(map(len, texts)) >= 10000
    assert "a" * 300 in texts
    assert any("[CLS]" in text for text in texts)
    for sample in ("é", "ß", "ệ", "ñ", "中", "の", "한", "ж", "ع", "ह", "ก", "ש", "λ",
                   "\u200d", "\U0001f3fd", "\U0001f1eb", "\x00", "\u0301"):
        assert any(sample in text for text in texts), f"no corpus text holds {sample!r}"
