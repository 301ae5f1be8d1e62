"""Release gate: may this candidate artifact replace the current release?

    bazel run //models/digits:release_gate [-- --candidate PATH] [--promote]

The default candidate is the model this checkout builds. The gate measures the
candidate itself, through the public inference API, on the repository's test
split; it does not take the artifact's recorded metrics on trust. It fails
(exit 1, naming each failed check and its numbers) unless:

  1. the artifact loads and verifies (magic, format, checksum, schema);
  2. its recorded test accuracy reproduces when measured;
  3. test accuracy >= gate.min_test_accuracy (config.json);
  4. its recorded quantized-vs-float agreement >= gate.min_quantized_agreement;
  5. predictions on a fixed probe set are valid probability distributions;
  6. predictions are bit-identical whatever the batch composition;
  7. the headline metric (test-split top-1 accuracy) has not dropped by more
     than the release's relative tolerance below the current release's value
     (release/current.json).

`--promote` then records the candidate as the current release
(release/current.json in the source tree; commit it with the change).

`judge(model_path, release_path)` is the same gate as the image's release tool
calls it (model_image's release_gate, services/digits/BUILD): `bazel run
//services/digits:image.release -- validate` runs it on the model taken out of
the pushed image, `... -- gate` on the model this checkout builds.
"""

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from inference import errors
from inference.model import Model
from models.digits import config as config_lib
from models.digits import metrics, paths, records

HEADLINE = "test_accuracy"
REPRODUCE_TOLERANCE = 1e-6  # recorded metrics are rounded to 6 decimals
PROBE_SEED = 20240611


class ReleaseRecordError(ValueError):
    """release/current.json is unusable."""


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one gate check; `figures` are what it measured, by metric name
    (the release history records them)."""

    name: str
    ok: bool
    detail: str
    figures: dict = dataclasses.field(default_factory=dict)


def load_release(path):
    """Reads and validates the current release record."""
    try:
        with open(path, encoding="utf-8") as src:
            release = json.load(src)
    except (OSError, ValueError) as err:
        raise ReleaseRecordError(f"cannot read the release record {path}: {err}") from err
    problems = []
    if not isinstance(release, dict):
        raise ReleaseRecordError(f"{path}: must be a JSON object")
    if release.get("headline_metric") != HEADLINE:
        problems.append(f"'headline_metric' must be {HEADLINE!r}, "
                        f"got {release.get('headline_metric')!r}")
    for key, low, high in (("headline_value", 0, 1), ("relative_tolerance", 0, 0.5)):
        value = release.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low <= value <= high:
            problems.append(f"'{key}' must be a number from {low} to {high}, got {value!r}")
    if not isinstance(release.get("version"), str):
        problems.append("'version' (the released artifact's sha256) is missing")
    if problems:
        raise ReleaseRecordError(f"{path} is invalid: " + "; ".join(problems))
    return release


def probe_set(test_images):
    """Fixed awkward and ordinary images: blank, full, patterns, noise, real digits."""
    rng = np.random.default_rng(PROBE_SEED)
    n_pixels = test_images.shape[1]
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * records.MAX_LEVEL).reshape(-1)
    return np.vstack([
        np.zeros(n_pixels), np.full(n_pixels, records.MAX_LEVEL), checker,
        rng.integers(0, records.MAX_LEVEL + 1, size=(16, n_pixels)),
        rng.uniform(0, records.MAX_LEVEL, size=(8, n_pixels)),
        test_images[:16],
    ]).astype(np.float64)


def _valid_distributions(proba, n_rows, n_labels):
    if proba.shape != (n_rows, n_labels) or proba.dtype != np.float32:
        return f"shape {proba.shape} {proba.dtype}, expected ({n_rows}, {n_labels}) float32"
    if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
        return "values outside [0, 1] or not finite"
    worst = float(np.abs(proba.sum(axis=1, dtype=np.float64) - 1).max())
    if worst > 1e-5:
        return f"a row sums to 1 {worst:+.2e}"
    return None


def _batch_independent(model, probe, others):
    whole = model.predict_proba(probe)
    variants = {
        "one row at a time": np.vstack([model.predict_proba(probe[i:i + 1])
                                        for i in range(len(probe))]),
        "reversed": model.predict_proba(probe[::-1])[::-1],
        "among other rows": model.predict_proba(np.vstack([others, probe]))[len(others):],
        "repeated call": model.predict_proba(probe),
    }
    return [name for name, proba in variants.items() if not np.array_equal(proba, whole)]


def evaluate(candidate, release, gate, dataset):
    """Runs every check on the candidate artifact; returns the list of `Check`s."""
    try:
        model = Model.load(candidate)
    except errors.ArtifactError as err:
        return [Check("artifact loads and verifies", False, str(err))]
    checks = [Check("artifact loads and verifies", True, f"version {model.version}")]
    recorded = model.metadata["metrics"]
    x_test, y_test = records.select(dataset, records.TEST)
    labels = np.array(model.labels)
    predicted = labels[model.predict_proba(x_test).argmax(axis=1)]
    measured = metrics.accuracy(y_test.astype(str), predicted)
    claimed = recorded.get(HEADLINE)
    checks.append(Check(
        "recorded test accuracy reproduces",
        isinstance(claimed, float) and abs(claimed - measured) <= REPRODUCE_TOLERANCE,
        f"recorded {claimed}, measured {measured:.6f} on {len(y_test)} test images"))
    floor = gate["min_test_accuracy"]
    checks.append(Check(f"test accuracy >= {floor}", measured >= floor,
                        f"measured {measured:.6f}", {HEADLINE: round(float(measured), 6)}))
    agreement, floor = recorded.get("quantized_agreement"), gate["min_quantized_agreement"]
    checks.append(Check(f"quantized/float top-1 agreement >= {floor}",
                        isinstance(agreement, float) and agreement >= floor,
                        f"recorded {agreement}"))
    probe = probe_set(x_test)
    problem = _valid_distributions(model.predict_proba(probe), len(probe), len(labels))
    checks.append(Check("probe predictions are probability distributions", problem is None,
                        problem or f"{len(probe)} probe images"))
    differ = _batch_independent(model, probe, x_test[-37:])
    checks.append(Check("predictions do not depend on batch composition", not differ,
                        "differs: " + ", ".join(differ) if differ else "bit-identical"))
    baseline, tolerance = release["headline_value"], release["relative_tolerance"]
    threshold = baseline * (1 - tolerance)
    checks.append(Check(
        f"{HEADLINE} within {tolerance:.1%} of the current release", measured >= threshold,
        f"candidate {measured:.6f}, current release {baseline:.6f} "
        f"(version {release['version'][:12]}), lowest allowed {threshold:.6f}"))
    return checks


def judge(model_path, release_path):
    """The release gate as model_image's `release_gate` calls it: every check of
    `evaluate` on the artifact at `model_path`, against the release record at
    `release_path`, with this package's gate settings (config.json) and test split
    (the data set), both found in the runfiles. Returns the list of `Check`s (name,
    ok, detail, figures); raises ReleaseRecordError, config.ConfigError,
    records.DatasetError or FileNotFoundError when it cannot run."""
    release = load_release(release_path)
    settings = config_lib.load(paths.runfile(paths.CONFIG))["gate"]
    dataset = records.read(paths.dataset_path())
    return evaluate(model_path, release, settings, dataset)


def release_record(candidate, release):
    """The release record that makes `candidate` (which passed the gate) the current release."""
    model = Model.load(candidate)
    m = model.metadata["metrics"]
    return {
        "comment": "The current release of //models/digits:model, compared against by "
                   "//models/digits:release_gate. Written by `bazel run "
                   "//models/digits:release_gate -- --promote`.",
        "version": model.version,
        "code_revision": model.metadata["training"].get("code_revision"),
        "headline_metric": HEADLINE,
        "headline_value": m[HEADLINE],
        "relative_tolerance": release["relative_tolerance"],
        "metrics": {key: m[key] for key in ("test_accuracy", "test_macro_f1",
                                            "float_test_accuracy", "quantized_agreement",
                                            "split_sizes")},
    }


def _user_path(path):
    # `bazel run` starts us in the runfiles tree; relative paths mean the user's cwd.
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)


def main(argv=None):
    """Command line entry point; returns the exit status (0 pass, 1 refused, 2 misuse)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--candidate", help="artifact to judge (default: the built model)")
    parser.add_argument("--release", help="release record (default: release/current.json)")
    parser.add_argument("--promote", action="store_true",
                        help="if the gate passes, record the candidate as the current release")
    args = parser.parse_args(argv)
    candidate = _user_path(args.candidate) if args.candidate else paths.model_path()
    try:
        release = load_release(_user_path(args.release) if args.release
                               else paths.runfile(paths.RELEASE))
        gate = config_lib.load(paths.runfile(paths.CONFIG))["gate"]
        dataset = records.read(paths.dataset_path())
    except (ReleaseRecordError, config_lib.ConfigError, records.DatasetError,
            FileNotFoundError) as err:
        print(f"release_gate: {err}", file=sys.stderr)
        return 2
    checks = evaluate(candidate, release, gate, dataset)
    print(f"release gate for {candidate}:")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        print(f"REFUSED: {len(failed)} check(s) failed: {'; '.join(failed)}")
        return 1
    print("ACCEPTED")
    if args.promote:
        workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
        if not workspace:
            print("release_gate: --promote needs `bazel run` (to find the source tree)",
                  file=sys.stderr)
            return 2
        target = os.path.join(workspace, paths.RELEASE)
        with open(target, "w", encoding="utf-8") as out:
            json.dump(release_record(candidate, release), out, indent=2,
                      sort_keys=True)
            out.write("\n")
        print(f"promoted: wrote {target}; commit it with the change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
