"""Release gate: may this candidate artifact replace the current MiniLM release?

    bazel run //models/minilm:release_gate [-- --candidate PATH] [--promote]

The default candidate is the model this checkout builds (//models/minilm:model,
the operating point's candidate). The gate measures the candidate itself with
the encoder that ships (inference/text/encoder.py), checked against the numpy
reference encoder (inference/text/reference.py), on the committed
reference data (models/minilm/data: Hugging Face token ids and
sentence-transformers' embeddings); it takes no recorded figure on trust. It
fails (exit 1, naming each failed check and its numbers) unless:

  1. the artifact loads, verifies, and is a sentence-encoder this reference runs;
  2. it is the operating point's candidate (release/operating_point.json);
  3. its architecture, tokenizer, pooling and normalization are the current
     release's (a change there must be a deliberate new release: --promote);
  4. its tokenizer (inference/text/tokenizer.py, from the artifact's vocabulary and
     settings) gives Hugging Face's ids for every reference text;
  5. the shipped encoder agrees with the reference (every cosine >= gate.json's
     shipped_vs_reference_min_cosine for the artifact's own activation mode, its
     header's precision.activations), and its vectors do not depend on the batch,
     bit for bit;
  6. its embeddings are finite, unit-length and of the declared dimension, and
     the reference's do not depend on its batch (padding) beyond gate.json's
     max_batch_difference;
  7. mean cosine to the reference over the evaluation corpus >= the floor,
     and every sentence's cosine >= its floor (gate.json);
  8. the headline metric (paraphrase top-1 retrieval accuracy) has not dropped
     by more than the release's relative tolerance below the current release's
     value (release/current.json).

`--promote` then records the candidate as the current release.

`judge(model_path, release_path)` is the same gate as an image's release tool
calls it (model_image's release_gate): on the model taken out of a pushed image,
or the one this checkout builds.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import sys

import numpy as np

from inference import artifact, errors
from inference.text import reference
from inference.text.encoder import SentenceEncoder
from inference.text.tokenizer import WordPieceTokenizer
from models.minilm import operating_point, paths, quality, reference_data

HEADLINE = "paraphrase_top1"
# The header fields a release fixes: what the service's tokenizer and encoder obey.
SETTINGS = ("architecture", "tokenizer", "pooling", "normalize", "output")
GATE_FIELDS = {
    "max_batch_difference": (0.0, 0.1),
    "min_cosine_to_reference": (0.0, 1.0),
    "min_mean_cosine_to_reference": (0.0, 1.0),
}
# gate.json's floor of check 5, one per activation mode (reference.ACTIVATIONS): with
# integer activations the shipped encoder and the reference round some activations to
# different codes, so they agree less closely than with float activations.
SHIPPED_FLOORS = "shipped_vs_reference_min_cosine"
UNIT_TOLERANCE = 1e-5
# Sentences of the evaluation corpus embedded alone and in batches for check 5.
BATCH_PROBE = 12


class ReleaseRecordError(ValueError):
    """release/current.json or gate.json is unusable."""


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one gate check; `figures` are what it measured, by metric name
    (the release history records them)."""

    name: str
    ok: bool
    detail: str
    figures: dict = dataclasses.field(default_factory=dict)


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as src:
            value = json.load(src)
    except (OSError, ValueError) as err:
        raise ReleaseRecordError(f"cannot read {what} {path}: {err}") from err
    if not isinstance(value, dict):
        raise ReleaseRecordError(f"{path}: must be a JSON object")
    return value


def _number(value, low, high):
    return not isinstance(value, bool) and isinstance(value, (int, float)) \
        and low <= value <= high


def load_release(path):
    """Reads and validates the current release record (every problem at once)."""
    release = _read_json(path, "the release record")
    problems = []
    if release.get("headline_metric") != HEADLINE:
        problems.append(f"'headline_metric' must be {HEADLINE!r}, "
                        f"got {release.get('headline_metric')!r}")
    for key, low, high in (("headline_value", 0, 1), ("relative_tolerance", 0, 0.5)):
        if not _number(release.get(key), low, high):
            problems.append(f"'{key}' must be a number from {low} to {high}, "
                            f"got {release.get(key)!r}")
    if not isinstance(release.get("version"), str):
        problems.append("'version' (the released artifact's sha256) is missing")
    if not isinstance(release.get("settings"), dict) or \
            sorted(release["settings"]) != sorted(SETTINGS):
        problems.append(f"'settings' must hold the released header's {', '.join(SETTINGS)}")
    if problems:
        raise ReleaseRecordError(f"{path} is invalid: " + "; ".join(problems))
    return release


def load_gate(path):
    """gate.json's floors, validated (every problem at once)."""
    gate = _read_json(path, "the gate settings")
    problems = [f"'{key}' must be a number from {low} to {high}, got {gate.get(key)!r}"
                for key, (low, high) in GATE_FIELDS.items()
                if not _number(gate.get(key), low, high)]
    floors = gate.get(SHIPPED_FLOORS)
    if not isinstance(floors, dict) or sorted(floors) != sorted(reference.ACTIVATIONS) or \
            not all(_number(v, 0.0, 1.0) for v in floors.values()):
        problems.append(f"'{SHIPPED_FLOORS}' must map each activation mode "
                        f"({', '.join(reference.ACTIVATIONS)}) to a number from 0.0 to 1.0, "
                        f"got {floors!r}")
    if problems:
        raise ReleaseRecordError(f"{path} is invalid: " + "; ".join(problems))
    return gate


def _settings_differ(header, release):
    return [key for key in SETTINGS if header.get(key) != release["settings"].get(key)]


def _tokenizer_check(candidate, data):
    name = "the artifact's tokenizer gives Hugging Face's ids"
    if data.eval_texts is None:
        return Check(name, False, "the reference texts were not read")
    try:
        tokenizer = WordPieceTokenizer.from_artifact(artifact.read(candidate))
    except errors.ArtifactError as err:
        return Check(name, False, f"no tokenizer: {err}")
    total, differ = 0, []
    for part in reference_data.SETS:
        texts, expected = getattr(data, f"{part}_texts"), getattr(data, f"{part}_ids")
        for index, (text, ids) in enumerate(zip(texts, expected)):
            total += 1
            if list(tokenizer.encode(text)) != ids:
                differ.append(f"{part} {index}")
    return Check(name, not differ, f"{len(differ)} of {total} texts differ" +
                 (f": {', '.join(differ[:5])}" if differ else ""),
                 {"tokenizer_mismatches": len(differ)})


def _embedding_problem(vectors, dimension, rows):
    if vectors.shape != (rows, dimension) or vectors.dtype != np.float32:
        return f"shape {vectors.shape} {vectors.dtype}, expected ({rows}, {dimension}) float32"
    if not np.all(np.isfinite(vectors)):
        return "values are not finite"
    worst = float(np.abs(np.linalg.norm(vectors.astype(np.float64), axis=1) - 1).max())
    if worst > UNIT_TOLERANCE:
        return f"a norm differs from 1 by {worst:.2e}"
    return None


def _batch_difference(encoder, ids):
    whole = encoder.embed_batch(ids)
    variants = [np.vstack([encoder.embed_batch([row]) for row in ids]),
                encoder.embed_batch(ids[::-1])[::-1],
                encoder.embed(ids)]
    return max(float(np.abs(v - whole).max()) for v in variants)


def _shipped_difference(embed, ids):
    """Largest difference between the shipped encoder's vectors of `ids` as one batch and
    each row alone, and the batch reversed (it runs without padding: 0.0 expected)."""
    whole = embed(ids)
    variants = [np.vstack([embed([row]) for row in ids]), embed(ids[::-1])[::-1]]
    return max(float(np.abs(v - whole).max()) for v in variants)


def evaluate(candidate, release, gate, wanted, data):
    """Runs every check on the candidate artifact file; returns the list of `Check`s.
    `wanted` is the operating point's candidate name."""
    try:
        encoder = reference.ReferenceEncoder.load(candidate)
    except (errors.ArtifactError, reference.SchemaError, KeyError) as err:
        return [Check("artifact loads and is a sentence encoder", False,
                      f"{type(err).__name__}: {err}")]
    header = encoder.header
    variant = header["model"].get("variant")
    checks = [Check("artifact loads and is a sentence encoder", True,
                    f"variant {variant!r}, {header['model'].get('name')}")]
    checks.append(Check("artifact is the operating point's candidate", variant == wanted,
                        f"artifact variant {variant!r}, operating point {wanted!r}"))
    differ = _settings_differ(header, release)
    checks.append(Check("settings are the current release's", not differ,
                        f"differ: {', '.join(differ)} (a deliberate change: edit 'settings' "
                        f"in {paths.RELEASE})" if differ else
                        ", ".join(SETTINGS) + " unchanged"))
    checks.append(_tokenizer_check(candidate, data))
    # The figures are the encoder's that ships (inference/text/encoder.py, the Cython
    # kernels), checked against the reference implementation here.
    try:
        shipped = SentenceEncoder.load(candidate)
    except errors.ArtifactError as err:
        checks.append(Check("the shipped encoder runs it", False, f"{type(err).__name__}: {err}"))
        return checks
    dimension = header["output"]["dimension"]

    def shipped_embed(ids):
        flat = np.frombuffer(shipped.embed_ids_flat(ids), dtype=np.float32)
        return flat.reshape(len(ids), dimension)

    figures = quality.measure(shipped_embed, data)
    agreement = float(quality.cosines(shipped_embed(data.eval_ids),
                                      encoder.embed(data.eval_ids)).min())
    checks.append(shipped_agreement_check(agreement, encoder.activations, gate,
                                          len(data.eval_ids)))
    shipped_worst = _shipped_difference(shipped_embed, data.eval_ids[:BATCH_PROBE])
    checks.append(Check("the shipped encoder's embeddings do not depend on the batch (bit for "
                        "bit)", shipped_worst == 0.0, f"largest difference {shipped_worst:.2e}",
                        {"shipped_batch_difference": shipped_worst}))
    vectors = encoder.embed(data.eval_ids[:BATCH_PROBE])
    problem = _embedding_problem(vectors, header["output"]["dimension"], len(vectors))
    checks.append(Check("embeddings are finite unit vectors", problem is None,
                        problem or f"{len(vectors)} sentences"))
    worst = _batch_difference(encoder, data.eval_ids[:BATCH_PROBE])
    limit = gate["max_batch_difference"]
    checks.append(Check(f"embeddings do not depend on the batch (<= {limit:g})", worst <= limit,
                        f"largest difference {worst:.2e}",
                        {"batch_difference": float(f"{worst:.3g}")}))
    mean, lowest = figures["mean_cosine_to_reference"], figures["min_cosine_to_reference"]
    floor = gate["min_mean_cosine_to_reference"]
    checks.append(Check(f"mean cosine to the reference >= {floor}", mean >= floor,
                        f"measured {mean:.6f} over {len(data.eval_ids)} sentences",
                        {"mean_cosine_to_reference": mean}))
    floor = gate["min_cosine_to_reference"]
    checks.append(Check(f"every sentence's cosine to the reference >= {floor}", lowest >= floor,
                        f"lowest {lowest:.6f}", {"min_cosine_to_reference": lowest}))
    checks.append(headline_check(figures[HEADLINE], len(data.sentence_ids), release))
    return checks


def shipped_agreement_check(agreement, activations, gate, sentences):
    """Check 5's cosine part: the lowest cosine between the shipped encoder's and the
    reference's embeddings of `sentences` sentences against gate.json's floor for the
    artifact's activation mode (`activations`, its header's precision.activations)."""
    floor = gate[SHIPPED_FLOORS][activations]
    return Check(f"the shipped encoder agrees with the reference (every cosine >= {floor}, "
                 f"{activations} activations)", agreement >= floor,
                 f"lowest {agreement:.7f} over {sentences} sentences",
                 {"min_cosine_shipped_to_reference": agreement})


def headline_check(measured, pairs, release):
    """Check 7: the headline measured over `pairs` pairs against the release record."""
    baseline, tolerance = release["headline_value"], release["relative_tolerance"]
    threshold = baseline * (1 - tolerance)
    return Check(
        f"{HEADLINE} within {tolerance:.1%} of the current release", measured >= threshold,
        f"candidate {measured:.6f} over {pairs} pairs, current release {baseline:.6f} "
        f"(version {release['version'][:12]}), lowest allowed {threshold:.6f}",
        {HEADLINE: measured})


def judge(model_path, release_path):
    """The release gate as model_image's `release_gate` calls it: every check of
    `evaluate` on the artifact at `model_path` against the release record at
    `release_path`, with gate.json, the operating point and the reference data
    found in the runfiles. Returns the list of `Check`s (name, ok, detail,
    figures); raises ReleaseRecordError, OperatingPointError, ReferenceDataError or
    FileNotFoundError when it cannot run."""
    release = load_release(release_path)
    gate = load_gate(paths.runfile(paths.GATE))
    wanted = operating_point.candidate(paths.runfile(paths.OPERATING_POINT))
    data = reference_data.read(paths.runfile(paths.REFERENCE), with_texts=True)
    return evaluate(model_path, release, gate, wanted, data)


def release_record(candidate, release, checks):
    """The release record that makes `candidate` (which passed the gate) the current
    release; its figures are the ones the gate just measured."""
    encoder = reference.ReferenceEncoder.load(candidate)
    header = encoder.header
    measured = {}
    for check in checks:
        measured.update(check.figures)
    with open(candidate, "rb") as src:
        version = hashlib.sha256(src.read()).hexdigest()
    return {
        "comment": "The current release of //models/minilm:model, compared against by "
                   "//models/minilm:release_gate. Written by `bazel run "
                   "//models/minilm:release_gate -- --promote`.",
        "version": version,
        "variant": header["model"]["variant"],
        "code_revision": header["model"].get("code_revision"),
        "headline_metric": HEADLINE,
        "headline_value": measured[HEADLINE],
        "relative_tolerance": release["relative_tolerance"],
        "metrics": {key: measured[key] for key in sorted(measured)},
        "settings": {key: header[key] for key in SETTINGS},
    }


def main(argv=None):
    """Command line entry point; returns the exit status (0 pass, 1 refused, 2 misuse)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--candidate", help="artifact to judge (default: the built model)")
    parser.add_argument("--release", help="release record (default: release/current.json)")
    parser.add_argument("--promote", action="store_true",
                        help="if the gate passes, record the candidate as the current release")
    args = parser.parse_args(argv)
    cwd = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    candidate = os.path.join(cwd, args.candidate) if args.candidate else paths.model_path()
    try:
        release = load_release(os.path.join(cwd, args.release) if args.release
                               else paths.runfile(paths.RELEASE))
        gate = load_gate(paths.runfile(paths.GATE))
        wanted = operating_point.candidate(paths.runfile(paths.OPERATING_POINT))
        data = reference_data.read(paths.runfile(paths.REFERENCE), with_texts=True)
    except (ReleaseRecordError, operating_point.OperatingPointError,
            reference_data.ReferenceDataError, FileNotFoundError) as err:
        print(f"release_gate: {err}", file=sys.stderr)
        return 2
    checks = evaluate(candidate, release, gate, wanted, data)
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
            json.dump(release_record(candidate, release, checks), out, indent=2,
                      sort_keys=True)
            out.write("\n")
        print(f"promoted: wrote {target}; commit it with the change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
