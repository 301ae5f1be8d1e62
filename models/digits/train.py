"""Trains the digits classifier and writes the model artifact. numpy only; deterministic.

    train.py --dataset digits_dataset.npy --config config.json \\
             --code-revision HEX --out digits.model

Same code, config and dataset give a byte-identical artifact: BLAS is pinned to
one thread (below), every random draw comes from seeded np.random.default_rng
generators, nothing reads the clock, and the artifact's JSON header is canonical.
The recipe (split, model selection, quantization, code revision) is documented
in models/digits/README.md.
"""

import argparse
import hashlib
import os
import sys

# Multi-threaded BLAS may split sums differently from run to run; pin it to one
# thread before numpy is first imported (the Bazel genrule sets these too).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

# pylint: disable=wrong-import-position
import numpy as np  # noqa: E402

from inference import artifact, reference  # noqa: E402
from models.digits import config as config_lib  # noqa: E402
from models.digits import metrics, records  # noqa: E402
# pylint: enable=wrong-import-position

LABELS = [str(d) for d in range(records.N_CLASSES)]
_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPSILON = 1e-8


def init_params(rng, sizes):
    """He-normal weights, zero biases: [(W, b), ...] in float64."""
    return [(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in), np.zeros(n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def _logits(params, x):
    (w1, b1), (w2, b2) = params
    hidden = np.maximum(x @ w1 + b1, 0.0)
    return hidden, hidden @ w2 + b2


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss(params, x, y):
    """Mean softmax cross-entropy."""
    _, z = _logits(params, x)
    return float(-_log_softmax(z)[np.arange(len(y)), y].mean())


def gradients(params, x, y):
    """Gradients of the mean cross-entropy, [(dW, db), ...]."""
    (_, _), (w2, _) = params
    hidden, z = _logits(params, x)
    dz = np.exp(_log_softmax(z))
    dz[np.arange(len(y)), y] -= 1.0
    dz /= len(y)
    dhidden = (dz @ w2.T) * (hidden > 0)
    return [(x.T @ dhidden, dhidden.sum(axis=0)), (hidden.T @ dz, dz.sum(axis=0))]


def train(settings, x_train, y_train, x_val, y_val):
    """Adam with decoupled weight decay; keeps the epoch with the best validation accuracy.

    Inputs are preprocessed already. Early stopping and model selection look at
    the validation split only. Returns (params, best_epoch, epochs_run).
    """
    cfg = settings["training"]
    rng = np.random.default_rng(cfg["seed"])
    sizes = [x_train.shape[1], settings["model"]["hidden_units"], records.N_CLASSES]
    params = init_params(rng, sizes)
    moments = [[(np.zeros_like(p), np.zeros_like(p)) for p in layer] for layer in params]
    best, best_key, best_epoch, step, epoch = params, None, 0, 0, 0
    beta1, beta2 = _ADAM_BETAS
    for epoch in range(1, cfg["max_epochs"] + 1):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), cfg["batch_size"]):
            batch = order[start:start + cfg["batch_size"]]
            step += 1
            correction = np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            grads = gradients(params, x_train[batch], y_train[batch])
            updated = []
            for layer, layer_grads, layer_moments in zip(params, grads, moments):
                new_layer = []
                for i, (p, g, (m, v)) in enumerate(zip(layer, layer_grads, layer_moments)):
                    m *= beta1
                    m += (1 - beta1) * g
                    v *= beta2
                    v += (1 - beta2) * g * g
                    p = p - cfg["learning_rate"] * correction * m / (np.sqrt(v) + _ADAM_EPSILON)
                    if i == 0:  # decay weights, not biases
                        p = p - cfg["learning_rate"] * cfg["weight_decay"] * p
                    new_layer.append(p)
                updated.append(tuple(new_layer))
            params = updated
        _, z = _logits(params, x_val)
        key = (metrics.accuracy(y_val, z.argmax(axis=1)), -loss(params, x_val, y_val))
        if best_key is None or key > best_key:
            best, best_key, best_epoch = params, key, epoch
        elif epoch - best_epoch >= cfg["patience"]:
            break
    return best, best_epoch, epoch


def fold_preprocessing(params, center, scale):
    """Float32 weights on raw pixel levels: preprocessing (x - center) / scale moved into dense1."""
    (w1, b1), (w2, b2) = params
    folded_w1 = w1 / scale
    folded_b1 = b1 - (center / scale) @ w1
    return [(folded_w1.astype(np.float32), folded_b1.astype(np.float32)),
            (w2.astype(np.float32), b2.astype(np.float32))]


def quantize(w):
    """Symmetric int8 per output channel (column): w ~= q * scale, q in [-127, 127]."""
    w = np.asarray(w, dtype=np.float64)
    top = np.abs(w).max(axis=0)
    scale = np.where(top > 0, top / artifact.INT8_LIMIT, 1.0)
    q = np.clip(np.rint(w / scale), -artifact.INT8_LIMIT, artifact.INT8_LIMIT)
    return q.astype(np.int8), scale.astype(np.float32)


def quantized_tensors(folded):
    """The artifact's weight tensors for float32 folded params."""
    tensors = {}
    for layer, (w, b) in zip(artifact.LAYERS, folded):
        q, scale = quantize(w)
        tensors[artifact.tensor_name(layer, artifact.WEIGHT)] = q
        tensors[artifact.tensor_name(layer, artifact.SCALE)] = scale
        tensors[artifact.tensor_name(layer, artifact.BIAS)] = b
    return tensors


def float_predict(folded, x):
    """Top-1 classes of the float32 (unquantized) model on raw pixel levels."""
    (w1, b1), (w2, b2) = folded
    hidden = np.maximum(x.astype(np.float32) @ w1 + b1, np.float32(0))
    return (hidden @ w2 + b2).argmax(axis=1)


def evaluate(folded, tensors, data):
    """The metrics recorded in the artifact. `data`: {split name: (x, y)}."""
    x_test, y_test = data["test"]
    quantized = reference.ReferenceModel(tensors)
    predicted = quantized.predict_proba(x_test).argmax(axis=1)
    float_predicted = float_predict(folded, x_test)
    x_val, y_val = data["validation"]
    return {
        "evaluated_on": "test split: never used for training, early stopping or selection",
        "test_accuracy": round(metrics.accuracy(y_test, predicted), metrics.DIGITS),
        "test_macro_f1": round(metrics.macro_f1(y_test, predicted, len(LABELS)), metrics.DIGITS),
        "test_per_class": metrics.per_class(y_test, predicted, LABELS),
        "float_test_accuracy": round(metrics.accuracy(y_test, float_predicted), metrics.DIGITS),
        "quantized_agreement": round(metrics.accuracy(float_predicted, predicted),
                                     metrics.DIGITS),
        "validation_accuracy": round(metrics.accuracy(
            y_val, quantized.predict_proba(x_val).argmax(axis=1)), metrics.DIGITS),
        "split_sizes": {name: int(len(data[name][1])) for name in records.SPLITS},
    }


def build(settings, dataset, revision, dataset_sha256):
    """Trains on the dataset records and returns the artifact's (header, tensors)."""
    data = {name: records.select(dataset, code) for code, name in enumerate(records.SPLITS)}
    x_train, y_train = data["train"]
    center, scale = x_train.mean(axis=0), float(records.MAX_LEVEL)
    x_val, y_val = data["validation"]
    params, best_epoch, epochs_run = train(settings, (x_train - center) / scale, y_train,
                                           (x_val - center) / scale, y_val)
    folded = fold_preprocessing(params, center, scale)
    tensors = quantized_tensors(folded)
    hidden = settings["model"]["hidden_units"]
    header = {
        "model": {"name": "digits-mlp",
                  "task": "classify 8x8 images of handwritten digits into 0-9"},
        "architecture": {"type": artifact.ARCHITECTURE,
                         "sizes": [records.N_PIXELS, hidden, len(LABELS)]},
        "input": {"name": "pixels", "shape": [records.N_PIXELS], "image_shape": [8, 8],
                  "dtype": "float32", "value_range": [0, records.MAX_LEVEL],
                  "rounding": "values are rounded to the nearest level, halves up: "
                              "floor(x + 0.5)"},
        "output": {"name": "probabilities", "shape": [len(LABELS)], "dtype": "float32",
                   "schema_version": artifact.OUTPUT_SCHEMA_VERSION},
        "labels": LABELS,
        "preprocessing": {"formula": "(x - center) / scale", "center": center.tolist(),
                          "scale": scale, "folded_into": "dense1"},
        "quantization": {
            "weights": "int8, symmetric, per output channel: w = q * scale, q in [-127, 127]",
            "biases": "float32", "activations": "float32",
            "dense1": "integer levels x int8 weights, exact integer accumulation",
        },
        "metrics": evaluate(folded, tensors, data),
        "training": {"code_revision": revision, "dataset_sha256": dataset_sha256,
                     "config": settings, "best_epoch": best_epoch, "epochs_run": epochs_run,
                     "selection": "best validation accuracy, ties to lower validation loss"},
    }
    return header, tensors


def sha256_file(path):
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as src:
        return hashlib.sha256(src.read()).hexdigest()


def code_revision(paths):
    """The documented training code revision: sha256 over the inputs' sha256 lines.

    Equal to `sha256sum FILES | cut -c1-64 | sha256sum` with FILES in the order
    given (BUILD lists them): each input contributes "<hex digest>\\n".
    """
    lines = "".join(sha256_file(path) + "\n" for path in paths)
    return hashlib.sha256(lines.encode("ascii")).hexdigest()


def main(argv=None):
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", required=True, help="dataset file from dataset.py")
    parser.add_argument("--config", required=True, help="models/digits/config.json")
    parser.add_argument("--out", required=True, help="the artifact to write")
    revision = parser.add_mutually_exclusive_group(required=True)
    revision.add_argument("--code-revision", help="precomputed revision (the genrule's)")
    revision.add_argument("--revision-inputs", nargs="+", metavar="FILE",
                          help="compute the revision from these files, in this order")
    args = parser.parse_args(argv)
    try:
        settings = config_lib.load(args.config)
        dataset = records.read(args.dataset)
    except (config_lib.ConfigError, records.DatasetError) as err:
        print(f"train: {err}", file=sys.stderr)
        return 2
    header, tensors = build(settings, dataset, args.code_revision or
                            code_revision(args.revision_inputs), sha256_file(args.dataset))
    version = artifact.write(args.out, header, tensors)
    m = header["metrics"]
    print(f"train: wrote {args.out} version {version}: test accuracy {m['test_accuracy']}, "
          f"macro-F1 {m['test_macro_f1']}, quantized agreement {m['quantized_agreement']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
