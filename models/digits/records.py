"""The dataset file of the digits pipeline: what dataset.py writes and train.py reads.

One .npy file (np.save: byte-deterministic, loads without pickle) holding a
structured array with one record per image, in scikit-learn's order:

    pixels  uint8[64]  levels 0..16 of the 8x8 image, row-major
    label   uint8      the digit, 0..9
    split   uint8      0 = train, 1 = validation, 2 = test
"""

import numpy as np

N_PIXELS = 64
MAX_LEVEL = 16
N_CLASSES = 10
SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = range(len(SPLITS))
RECORD = np.dtype([("pixels", "u1", (N_PIXELS,)), ("label", "u1"), ("split", "u1")])


class DatasetError(ValueError):
    """The dataset file does not have the layout described above."""


def write(path, records):
    """Writes records (an array of RECORD) after checking them."""
    check(records, str(path))
    with open(path, "wb") as out:
        np.save(out, records, allow_pickle=False)


def read(path):
    """Reads and checks a dataset file; returns the records array."""
    try:
        records = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise DatasetError(f"{path} is not a dataset file: {err}") from err
    check(records, str(path))
    return records


def check(records, source):
    """Raises DatasetError unless `records` follows the documented layout."""
    if records.dtype != RECORD or records.ndim != 1:
        raise DatasetError(f"{source}: expected a 1-D array of {RECORD}, got "
                           f"{records.dtype} {records.shape}")
    problems = []
    if records.size and records["pixels"].max() > MAX_LEVEL:
        problems.append(f"pixel levels above {MAX_LEVEL}")
    if records.size and records["label"].max() >= N_CLASSES:
        problems.append(f"labels outside 0..{N_CLASSES - 1}")
    if records.size and records["split"].max() >= len(SPLITS):
        problems.append(f"split codes outside 0..{len(SPLITS) - 1}")
    if problems:
        raise DatasetError(f"{source}: " + "; ".join(problems))


def select(records, split):
    """(pixels as float64 (N, 64), labels as int64 (N,)) of one split, in file order."""
    chosen = records[records["split"] == split]
    return chosen["pixels"].astype(np.float64), chosen["label"].astype(np.int64)
