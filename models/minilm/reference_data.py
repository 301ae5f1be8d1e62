"""The committed reference data (models/minilm/data/), read for evaluation and the gate.

sentence-transformers' own float32 embeddings and Hugging Face `tokenizers` token
ids of every evaluation sentence and of both sides of every paraphrase pair,
computed once with the reference venv and committed (models/minilm/data/README.md).
"""

import dataclasses

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


def _ragged(flat, offsets, where):
    if flat.ndim != 1 or offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(flat) \
            or np.any(np.diff(offsets) < 0):
        raise ReferenceDataError(f"{where}: ids and offsets do not describe lists of token ids")
    values = flat.tolist()
    return [values[begin:end] for begin, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def read(path):
    """The reference data in the .npz file at `path`."""
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
    return ReferenceData(**fields)
