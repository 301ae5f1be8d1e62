"""The committed reference data (models/minilm/data/), read for evaluation and the gate.

sentence-transformers' own float32 embeddings and Hugging Face `tokenizers` token
ids of every evaluation sentence and of both sides of every paraphrase pair,
computed once with the reference venv and committed (models/minilm/data/README.md).
"""

import dataclasses
import os

import numpy as np

SETS = ("eval", "sentence", "paraphrase")


class ReferenceDataError(ValueError):
    """The reference data file does not have the expected layout; says what is wrong."""


@dataclasses.dataclass(frozen=True)
class ReferenceData:
    """Token ids (lists of lists) and reference embeddings (float32 [n, 384]) per set:
    the evaluation corpus, and the two sides of the paraphrase pairs (row i of
    `sentence_*` and of `paraphrase_*` are pair i)."""

    eval_ids: list
    eval_embeddings: np.ndarray
    sentence_ids: list
    sentence_embeddings: np.ndarray
    paraphrase_ids: list
    paraphrase_embeddings: np.ndarray
    # The texts the ids are of (eval_sentences.txt, paraphrases.tsv), when read.
    eval_texts: list = None
    sentence_texts: list = None
    paraphrase_texts: list = None


def _ragged(flat, offsets, where):
    if flat.ndim != 1 or offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(flat) \
            or np.any(np.diff(offsets) < 0):
        raise ReferenceDataError(f"{where}: ids and offsets do not describe lists of token ids")
    values = flat.tolist()
    return [values[begin:end] for begin, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def _lines(path):
    with open(path, encoding="utf-8") as src:
        lines = src.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_texts(folder):
    """{"eval_texts", "sentence_texts", "paraphrase_texts"} from the data folder's
    eval_sentences.txt and paraphrases.tsv (header line, then id, sentence, paraphrase)."""
    pairs = [line.split("\t") for line in _lines(os.path.join(folder, "paraphrases.tsv"))[1:]]
    if any(len(fields) != 3 for fields in pairs):
        raise ReferenceDataError(f"{folder}/paraphrases.tsv: a line is not id<TAB>sentence<TAB>"
                                 "paraphrase")
    return {"eval_texts": _lines(os.path.join(folder, "eval_sentences.txt")),
            "sentence_texts": [fields[1] for fields in pairs],
            "paraphrase_texts": [fields[2] for fields in pairs]}


def read(path, with_texts=False):
    """The reference data in the .npz file at `path` (and, with `with_texts`, the texts
    from the files beside it)."""
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ReferenceDataError(f"cannot read the reference data {path}: {err}") from err
    fields = {}
    with arrays:
        for name in SETS:
            try:
                ids = _ragged(arrays[f"{name}_ids"], arrays[f"{name}_offsets"], f"{path} {name}")
                embeddings = np.asarray(arrays[f"{name}_embeddings"], dtype=np.float32)
            except KeyError as err:
                raise ReferenceDataError(f"{path} lacks {err}") from err
            if embeddings.ndim != 2 or len(embeddings) != len(ids):
                raise ReferenceDataError(f"{path}: {len(ids)} {name} id lists but embeddings of "
                                         f"shape {list(embeddings.shape)}")
            fields[f"{name}_ids"], fields[f"{name}_embeddings"] = ids, embeddings
    if len(fields["sentence_ids"]) != len(fields["paraphrase_ids"]):
        raise ReferenceDataError(f"{path}: {len(fields['sentence_ids'])} sentences but "
                                 f"{len(fields['paraphrase_ids'])} paraphrases")
    if with_texts:
        try:
            fields.update(read_texts(os.path.dirname(path)))
        except OSError as err:
            raise ReferenceDataError(f"cannot read the texts beside {path}: {err}") from err
        for name in SETS:
            if len(fields[f"{name}_texts"]) != len(fields[f"{name}_ids"]):
                raise ReferenceDataError(f"{len(fields[f'{name}_texts'])} {name} texts but "
                                         f"{len(fields[f'{name}_ids'])} id lists in {path}")
    return ReferenceData(**fields)
