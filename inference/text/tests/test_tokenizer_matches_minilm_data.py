"""The tokenizer gives the ids models/minilm/data recorded for its own texts.

A second, independent reference: the evaluation sentences and paraphrase
pairs, tokenized by `tokenizers` when the sentence-transformers embeddings
were computed (models/minilm/reference/compute_reference.py).
"""

import os

import numpy as np
import pytest
from runfiles import Runfiles

from inference.text.tests import tokenizer_data

DATA = "modelship/models/minilm/data"


def _file(name):
    path = Runfiles.Create().Rlocation(f"{DATA}/{name}")
    assert path and os.path.exists(path), f"{DATA}/{name} is not in the runfiles"
    return path


def _texts():
    with open(_file("eval_sentences.txt"), encoding="utf-8") as f:
        evaluation = f.read().splitlines()
    with open(_file("paraphrases.tsv"), encoding="utf-8") as f:
        pairs = [line.split("\t") for line in f.read().splitlines()[1:]]
    return {"eval": evaluation, "sentence": [p[1] for p in pairs],
            "paraphrase": [p[2] for p in pairs]}


@pytest.mark.parametrize("name", ["eval", "sentence", "paraphrase"])
def test_ids_equal_the_minilm_reference(name):
    texts = _texts()[name]
    with np.load(_file("reference.npz")) as reference:
        ids, offsets = reference[f"{name}_ids"], reference[f"{name}_offsets"]
    assert len(texts) == len(offsets) - 1
    tokenizer = tokenizer_data.tokenizer()
    wrong = [i for i, text in enumerate(texts)
             if list(tokenizer.encode(text)) != ids[offsets[i]:offsets[i + 1]].tolist()]
    assert not wrong, f"{len(wrong)} {name} texts differ, e.g. {texts[wrong[0]][:60]!r}"
