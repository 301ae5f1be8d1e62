"""Writes MODEL_CARD.md from a model artifact (everything in it comes from the artifact,
and the operating point from release/operating_point.json).

    model_card.py --artifact digits.model [--operating-point FILE] --out MODEL_CARD.md
"""

import argparse
import json
import sys

from inference import artifact

INTENDED_USE = """\
Classifies 8x8 grey-level images of single handwritten digits (0-9), as in
scikit-learn's bundled "digits" data set (UCI optical recognition of
handwritten digits): each pixel is a count 0..16 of inked cells in a 4x4 block
of a 32x32 bitmap. It is a worked example of a production inference pipeline.
"""

LIMITS = """\
- Trained on 1,797 images written by 43 people in the 1990s: a different
  population, pen or scanning process will score lower than the figures above.
- Inputs must be on the same scale (levels 0..16, background 0); other scales
  are refused, not rescaled. Non-integer values are rounded to a level.
- It always answers one of the ten digits: a blank, a letter or noise still
  gets a (possibly confident) digit. Check `topk` probabilities before acting
  on a low-margin answer.
- Not for any decision about people (identity checks, grading, forms of
  record) without a fresh evaluation on that use's own data.
"""


def operating_point_lines(bounds):
    """The card's section on the bounds release validation holds the service to."""
    return [
        "## Operating point",
        "",
        "Release validation (`bazel run //services/digits:image.release -- validate`) measures "
        "a container of "
        "the image and refuses it beyond these bounds times "
        f"{1 + bounds['tolerance']:g} (tolerance {bounds['tolerance']:.0%}):",
        "",
        "| measure | bound |",
        "| --- | ---: |",
        f"| p95 latency, one image per OIP infer call, cache off | {bounds['latency_p95_ms']:g} "
        "ms |",
        f"| container memory after {bounds['requests']} such calls | {bounds['memory_mib']:g} "
        "MiB |",
        "",
    ]


def render(loaded, operating_point=None):
    """The model card of a decoded artifact (and the release's operating point bounds,
    when given), as markdown text."""
    header, m = loaded.header, loaded.header["metrics"]
    sizes = m["split_sizes"]
    training = header["training"]
    lines = [
        f"# Model card: {header['model']['name']}",
        "",
        "Generated from the artifact by //models/digits:model_card; do not edit.",
        "",
        f"- Version id (sha256 of the artifact): `{loaded.version}`",
        f"- Task: {header['model']['task']}",
        f"- Architecture: {header['architecture']['type']}, layer sizes "
        f"{' -> '.join(map(str, header['architecture']['sizes']))}",
        f"- Artifact format version {artifact.FORMAT_VERSION}, output schema version "
        f"{header['output']['schema_version']}",
        f"- Training code revision: `{training['code_revision']}`",
        f"- Dataset file sha256: `{training['dataset_sha256']}`",
        "",
        "## Intended use",
        "",
        INTENDED_USE.rstrip(),
        "",
        "## Input and output",
        "",
        f"- Input `{header['input']['name']}`: {header['input']['shape'][0]} values per image "
        f"(an {'x'.join(map(str, header['input']['image_shape']))} image, row-major), "
        f"levels {header['input']['value_range'][0]}..{header['input']['value_range'][1]} "
        f"(integers or floats; {header['input']['rounding']}).",
        f"- Output `{header['output']['name']}`: {header['output']['dtype']} probabilities over "
        f"the labels {', '.join(header['labels'])}.",
        "",
        "## Evaluation",
        "",
        f"Split (stratified, seeded): {sizes['train']} train, {sizes['validation']} validation, "
        f"{sizes['test']} test images. Early stopping and model selection used the "
        f"validation split only (best epoch {training['best_epoch']} of "
        f"{training['epochs_run']}); the figures below are on the test split.",
        "",
        "| metric | value |",
        "| --- | ---: |",
        f"| top-1 accuracy (quantized model, as served) | {m['test_accuracy']:.4f} |",
        f"| macro-F1 | {m['test_macro_f1']:.4f} |",
        f"| top-1 accuracy of the float model | {m['float_test_accuracy']:.4f} |",
        f"| quantized vs float top-1 agreement | {m['quantized_agreement']:.4f} |",
        f"| validation accuracy (quantized) | {m['validation_accuracy']:.4f} |",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label in header["labels"]:
        c = m["test_per_class"][label]
        lines.append(f"| {label} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | "
                     f"{c['support']} |")
    quant = header["quantization"]
    lines += [
        "",
        "## Quantization",
        "",
        f"- Weights: {quant['weights']}; biases {quant['biases']}, activations "
        f"{quant['activations']}.",
        f"- Layer 1: {quant['dense1']}; the input preprocessing "
        f"`{header['preprocessing']['formula']}` is folded into its weights and bias.",
        f"- Agreement with the float model on the test split: {m['quantized_agreement']:.4f}.",
        "",
    ]
    if operating_point:
        lines += operating_point_lines(operating_point)
    lines += [
        "## Limits",
        "",
        LIMITS.rstrip(),
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--operating-point", help="release/operating_point.json")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    bounds = None
    if args.operating_point:
        with open(args.operating_point, encoding="utf-8") as text:
            bounds = json.load(text)
    text = render(artifact.read(args.artifact), bounds)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
