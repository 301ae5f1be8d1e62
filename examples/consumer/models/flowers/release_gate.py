"""The flowers model's release gate: may this artifact be released?

model_image's `release_gate` (services/flowers/BUILD): the image's release tool
calls `judge(model_path, release_path)` on the model this commit builds
(`bazel run //:image.release -- gate`) and on the model taken out of a pushed
image (`... -- validate`). The checks measure the artifact itself on the data
set's held-out split; they take none of its recorded figures on trust:

  1. the artifact reads and is a nearest-centroid flowers model;
  2. its recorded test accuracy reproduces when measured;
  3. the measured test accuracy is at least the release record's
     `min_test_accuracy` (release/current.json).
"""

import dataclasses
import json

from inference import artifact
from models.flowers import data, train

HEADLINE = "test_accuracy"
REPRODUCE_TOLERANCE = 1e-6  # recorded metrics are rounded to 6 decimals


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's outcome; `figures` are what it measured (the release history keeps them)."""

    name: str
    ok: bool
    detail: str
    figures: dict = dataclasses.field(default_factory=dict)


def load_release(path):
    """The release record; ValueError naming the file and the field when it is unusable."""
    try:
        with open(path, encoding="utf-8") as src:
            record = json.load(src)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the release record {path}: {err}") from err
    floor = record.get("min_test_accuracy") if isinstance(record, dict) else None
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
        raise ValueError(f"{path}: 'min_test_accuracy' must be a number from 0 to 1, "
                         f"got {floor!r}")
    return record


def judge(model_path, release_path):
    """The checks above on the artifact at `model_path` against the release record at
    `release_path` (a list of `Check`); raises ValueError when the record is unusable."""
    floor = load_release(release_path)["min_test_accuracy"]
    try:
        loaded = artifact.read(model_path)
    except Exception as err:  # pylint: disable=broad-except
        # Whatever a damaged file raises, the verdict is the same: refused.
        return [Check("artifact reads", False, f"{type(err).__name__}: {err}")]
    header = loaded.header
    architecture = header.get("architecture", {}).get("type")
    if architecture != train.ARCHITECTURE or tuple(header.get("labels", ())) != data.LABELS:
        return [Check("artifact is a flowers model", False,
                      f"architecture {architecture!r}, labels {header.get('labels')!r}")]
    checks = [Check("artifact is a flowers model", True, f"version {loaded.version}")]
    n_features = len(data.FEATURES)
    flat = list(loaded.tensors["centroids"])
    means = [flat[i * n_features:(i + 1) * n_features] for i in range(len(data.LABELS))]
    _, test_rows = data.split(data.generate())
    measured = round(train.accuracy(test_rows, means, loaded.tensors["variance"][0]), 6)
    claimed = header.get("metrics", {}).get(HEADLINE)
    checks.append(Check(
        "recorded test accuracy reproduces",
        isinstance(claimed, float) and abs(claimed - measured) <= REPRODUCE_TOLERANCE,
        f"recorded {claimed}, measured {measured:.6f} on {len(test_rows)} held-out flowers"))
    checks.append(Check(f"{HEADLINE} >= {floor}", measured >= floor,
                        f"measured {measured:.6f}", {HEADLINE: measured}))
    return checks
