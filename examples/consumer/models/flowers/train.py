"""Trains the flowers model: a nearest-centroid classifier, in plain Python.

    bazel build //models/flowers:model     (runs this with --out)

Each species is represented by the mean of its training rows; a row's
probabilities are a softmax of minus its squared distances to the centroids,
scaled by the pooled within-species variance. The artifact is written in
modelship's model format (inference/artifact.py), whose header the image
build reads for its labels (model name, version, headline metric).
"""

import argparse
import array
import math
import sys

from inference import artifact
from models.flowers import data

ARCHITECTURE = "nearest-centroid"
MODEL_NAME = "flowers"


def centroids(rows, n_labels):
    """Mean row of each label, as lists of floats."""
    sums = [[0.0] * len(data.FEATURES) for _ in range(n_labels)]
    counts = [0] * n_labels
    for row, label in rows:
        counts[label] += 1
        for j, value in enumerate(row):
            sums[label][j] += value
    if min(counts) == 0:
        raise ValueError(f"every label needs training rows, counts are {counts}")
    return [[total / counts[i] for total in sums[i]] for i in range(n_labels)]


def pooled_variance(rows, means):
    """Mean squared distance of a row to its own centroid, per feature."""
    total = sum((value - means[label][j]) ** 2 for row, label in rows
                for j, value in enumerate(row))
    return total / (len(rows) * len(data.FEATURES))


def probabilities(row, means, variance):
    """Softmax of -distance^2 / (2 variance) over the centroids."""
    scores = [-sum((v - m) ** 2 for v, m in zip(row, centre)) / (2 * variance)
              for centre in means]
    top = max(scores)
    weights = [math.exp(score - top) for score in scores]
    total = sum(weights)
    return [w / total for w in weights]


def accuracy(rows, means, variance):
    """Share of rows whose most probable label is theirs."""
    right = 0
    for row, label in rows:
        probs = probabilities(row, means, variance)
        right += probs.index(max(probs)) == label
    return right / len(rows)


def train():
    """(header, tensors) of the model trained on the data set."""
    train_rows, test_rows = data.split(data.generate())
    means = centroids(train_rows, len(data.LABELS))
    variance = pooled_variance(train_rows, means)
    # The metrics use the float32 values the artifact stores, as the service will.
    stored = array.array("f", [value for centre in means for value in centre])
    stored_means = [list(stored[i * len(data.FEATURES):(i + 1) * len(data.FEATURES)])
                    for i in range(len(data.LABELS))]
    stored_variance = array.array("f", [variance])
    header = {
        "model": {"name": MODEL_NAME},
        "architecture": {"type": ARCHITECTURE},
        "labels": list(data.LABELS),
        "input": {"shape": [len(data.FEATURES)], "features": list(data.FEATURES),
                  "value_range": [0, data.MAX_LEVEL]},
        "metrics": {
            "test_accuracy": round(accuracy(test_rows, stored_means, stored_variance[0]), 6),
            "train_accuracy": round(accuracy(train_rows, stored_means, stored_variance[0]), 6),
            "split_sizes": {"train": len(train_rows), "test": len(test_rows)},
        },
        "output": {"schema_version": artifact.OUTPUT_SCHEMA_VERSION},
        "training": {"seed": data.SEED},
    }
    return header, {"centroids": stored, "variance": stored_variance}


def main(argv=None):
    """Entry point: writes the artifact to --out."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="where to write the model artifact")
    args = parser.parse_args(argv)
    header, tensors = train()
    try:
        version = artifact.write(args.out, header, tensors)
    except OSError as err:
        print(f"train: cannot write {args.out}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"train: {args.out}: version {version}, metrics {header['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
