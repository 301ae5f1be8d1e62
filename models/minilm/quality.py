"""Quality and size figures of a sentence-encoder artifact (numpy only), shared by
evaluate.py, the release gate and the tests. Definitions: models/minilm/README.md,
"Evaluation".
"""

import re

import numpy as np

DIGITS = 6  # figures are recorded rounded to this many decimals
_LAYER = re.compile(r"^(layers\.\d+)\.")


def cosines(embeddings, reference):
    """Row-wise cosine similarity of two [n, d] arrays, float64 [n]."""
    a = np.asarray(embeddings, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(axis=1), norms, out=np.zeros(len(a)), where=norms > 0)


def paraphrase_hits(sentences, paraphrases):
    """For each pair i: is paraphrase i the nearest (cosine) of all paraphrases to
    sentence i? Ties go to the lower row (argmax). Boolean [n]."""
    a = np.asarray(sentences, dtype=np.float64)
    b = np.asarray(paraphrases, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return (a @ b.T).argmax(axis=1) == np.arange(len(a))


def group_of(name):
    """The size group of a tensor: 'embeddings', 'layers.<i>' or 'vocab'."""
    match = _LAYER.match(name)
    if match:
        return match.group(1)
    return "embeddings" if name.startswith("embeddings.") else name


def size_by_group(header, file_bytes):
    """Bytes per tensor group (embeddings, each layer, vocab), and 'header' for the rest
    of the file (preamble, JSON header, alignment padding)."""
    sizes = {}
    for entry in header["tensors"]:
        group = group_of(entry["name"])
        sizes[group] = sizes.get(group, 0) + entry["nbytes"]
    sizes["header"] = file_bytes - sum(sizes.values())
    return dict(sorted(sizes.items()))


def measure(embed, data):
    """The quality figures of `embed` (token id lists -> embeddings [n, d], e.g. a
    reference encoder's `embed`) on the reference data
    (models.minilm.reference_data.ReferenceData)."""
    eval_cos = cosines(embed(data.eval_ids), data.eval_embeddings)
    sentences = embed(data.sentence_ids)
    paraphrases = embed(data.paraphrase_ids)
    pair_cos = np.concatenate([cosines(sentences, data.sentence_embeddings),
                               cosines(paraphrases, data.paraphrase_embeddings)])
    return {
        "mean_cosine_to_reference": round(float(eval_cos.mean()), DIGITS),
        "min_cosine_to_reference": round(float(eval_cos.min()), DIGITS),
        "pairs_mean_cosine_to_reference": round(float(pair_cos.mean()), DIGITS),
        "paraphrase_top1": round(float(paraphrase_hits(sentences, paraphrases).mean()), DIGITS),
    }
