"""Latency per call of the Cython kernels, the numpy reference and onnxruntime.

    bazel run //models/digits:benchmark [-- --artifact PATH --repeat 25]

All three run the same model on the same test-split images in one process,
single-threaded (BLAS pinned to one thread below; onnxruntime with one intra-
and one inter-op thread), at batch sizes 1, 32 and 256:

  * cython: `Model.predict_proba`, the public API (input checks included), on
    a float32 array;
  * cython lists: the same on a list of rows of Python ints, answered with
    lists of floats, as a caller without numpy does (packing and checks included);
  * numpy: `inference.reference` (the same maths with BLAS, no input checks);
  * onnxruntime: the dequantized weights (w = q * scale) exported to ONNX in
    memory for this benchmark only; it gets integer-valued inputs, so it needs
    no rounding step.

Each figure is per call: timeit-style repeats of `number` calls, median and
90th percentile over the repeats, in microseconds. Prints a markdown table and
the speed ratios, and exits 1 if a target is missed (batch 1: cython >= 5x
numpy and >= 2x onnxruntime; batch 256: cython no slower than numpy).
"""

import os
import sys

# Single-threaded BLAS for a like-for-like comparison (and stable numbers on a
# shared machine); must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

# pylint: disable=wrong-import-position
import argparse  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
from onnx import helper, TensorProto  # noqa: E402

from inference import artifact, reference  # noqa: E402
from inference.model import Model  # noqa: E402
from models.digits import paths, records  # noqa: E402
from tools import cli  # noqa: E402
# pylint: enable=wrong-import-position

BATCH_SIZES = (1, 32, 256)
RUNNERS = ("cython", "cython lists", "numpy", "onnxruntime")
TARGETS = (
    # (batch, faster one, slower one, minimum speed-up)
    (1, "cython", "numpy", 5.0),
    (1, "cython", "onnxruntime", 2.0),
    (256, "cython", "numpy", 1.0),
)


def onnx_session(weights):
    """An onnxruntime session computing softmax(relu(x W1 + b1) W2 + b2), dequantized."""
    def dense(layer):
        def get(part):
            return np.asarray(weights[artifact.tensor_name(layer, part)], dtype=np.float32)
        w = get(artifact.WEIGHT) * get(artifact.SCALE)
        return (helper.make_tensor(f"{layer}_w", TensorProto.FLOAT, w.shape, w.ravel()),
                helper.make_tensor(f"{layer}_b", TensorProto.FLOAT, [w.shape[1]],
                                   get(artifact.BIAS)))
    n_in = weights[artifact.tensor_name("dense1", artifact.WEIGHT)].shape[0]
    n_out = weights[artifact.tensor_name("dense2", artifact.WEIGHT)].shape[1]
    nodes = [
        helper.make_node("MatMul", ["x", "dense1_w"], ["h0"]),
        helper.make_node("Add", ["h0", "dense1_b"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "dense2_w"], ["z0"]),
        helper.make_node("Add", ["z0", "dense2_b"], ["z1"]),
        helper.make_node("Softmax", ["z1"], ["p"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_in])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", n_out])],
        initializer=[*dense("dense1"), *dense("dense2")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8  # what every onnxruntime of the last years reads
    onnx.checker.check_model(proto)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(proto.SerializeToString(), sess_options=options,
                                        providers=["CPUExecutionProvider"])


def measure(call, repeat, budget_seconds=0.02):
    """(median, p90) seconds per call over `repeat` timeit repeats."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    number = max(1, int(number * budget_seconds / 0.2))
    per_call = np.array(timer.repeat(repeat=repeat, number=number)) / number
    return float(np.median(per_call)), float(np.percentile(per_call, 90))


def run(artifact_path, repeat):
    """{(runner, batch): (median, p90)} and the markdown report."""
    model = Model.load(artifact_path)
    weights = artifact.read(artifact_path).tensors
    numpy_model = reference.ReferenceModel(weights)
    session = onnx_session(weights)
    images, _ = records.select(records.read(paths.dataset_path()), records.TEST)
    images = images.astype(np.float32)
    results = {}
    for batch in BATCH_SIZES:
        x = np.ascontiguousarray(np.resize(images, (batch, images.shape[1])))
        expected = numpy_model.predict_proba(x)
        rows = x.astype(int).tolist()  # the images hold integer levels
        runners = {
            "cython": lambda x=x: model.predict_proba(x),
            "cython lists": lambda rows=rows: model.predict_proba(rows),
            "numpy": lambda x=x: numpy_model.predict_proba(x),
            "onnxruntime": lambda x=x: session.run(None, {"x": x})[0],
        }
        for name, call in runners.items():
            if not np.allclose(np.asarray(call()), expected, atol=1e-5):
                raise AssertionError(f"{name} disagrees with the reference at batch {batch}")
            results[(name, batch)] = measure(call, repeat)
    return results


def report(results):
    """Markdown table of the figures, speed ratios, and the list of missed targets."""
    lines = ["| batch | runner | median us/call | p90 us/call | numpy / this "
             "| onnxruntime / this |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for batch in BATCH_SIZES:
        for name in RUNNERS:
            median, p90 = results[(name, batch)]
            lines.append(
                f"| {batch} | {name} | {median * 1e6:.2f} | {p90 * 1e6:.2f} | "
                f"{results[('numpy', batch)][0] / median:.2f}x | "
                f"{results[('onnxruntime', batch)][0] / median:.2f}x |")
    missed = []
    for batch, fast, slow, factor in TARGETS:
        ratio = results[(slow, batch)][0] / results[(fast, batch)][0]
        verdict = "ok" if ratio >= factor else "MISSED"
        lines.append(f"\ntarget batch {batch}: {fast} >= {factor:g}x faster than {slow}: "
                     f"{ratio:.2f}x {verdict}")
        if ratio < factor:
            missed.append((batch, fast, slow, factor, ratio))
    return "\n".join(lines), missed


def main(argv=None):
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifact", help="model artifact (default: the built model)")
    parser.add_argument("--repeat", type=int, default=25, help="timeit repeats per figure")
    args = parser.parse_args(argv)
    results = run(cli.user_path(args.artifact) or paths.model_path(), args.repeat)
    table, missed = report(results)
    print(table)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
