"""Exports scikit-learn's bundled 8x8 digits and the fixed split to the dataset file.

    dataset.py --config config.json --out digits_dataset.npy

The only module of the pipeline that imports scikit-learn (a build-time
dependency). The file layout is in records.py; the split is made by
`stratified_split` with the settings of config.json's "dataset" section and is
documented in models/digits/README.md.
"""

import argparse
import sys

import numpy as np
from sklearn.datasets import load_digits

from models.digits import config as config_lib
from models.digits import records


def stratified_split(labels, seed, validation_fraction, test_fraction):
    """Split code (records.TRAIN/VALIDATION/TEST) of every example.

    For each class in ascending order, its example indices (ascending) are
    shuffled by one np.random.default_rng(seed) shared across classes; the first
    floor(n * test_fraction + 0.5) go to test, the next
    floor(n * validation_fraction + 0.5) to validation, the rest to train.
    """
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), records.TRAIN, dtype=np.uint8)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(np.floor(len(members) * test_fraction + 0.5))
        n_validation = int(np.floor(len(members) * validation_fraction + 0.5))
        split[members[:n_test]] = records.TEST
        split[members[n_test:n_test + n_validation]] = records.VALIDATION
    return split


def export(settings):
    """The dataset records for the "dataset" section of a validated config."""
    digits = load_digits()
    pixels, labels = digits.data, digits.target
    if pixels.shape[1] != records.N_PIXELS or not np.array_equal(pixels, np.rint(pixels)) \
            or pixels.min() < 0 or pixels.max() > records.MAX_LEVEL:
        raise ValueError("scikit-learn's digits are not 8x8 integer levels 0..16 any more")
    out = np.zeros(len(labels), dtype=records.RECORD)
    out["pixels"] = pixels.astype(np.uint8)
    out["label"] = labels.astype(np.uint8)
    out["split"] = stratified_split(labels, settings["split_seed"],
                                    settings["validation_fraction"], settings["test_fraction"])
    return out


def main(argv=None):
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", required=True, help="models/digits/config.json")
    parser.add_argument("--out", required=True, help="the dataset file to write (.npy)")
    args = parser.parse_args(argv)
    try:
        settings = config_lib.load(args.config)["dataset"]
    except config_lib.ConfigError as err:
        print(f"dataset: {err}", file=sys.stderr)
        return 2
    records.write(args.out, export(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
