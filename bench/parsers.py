"""Request parsing of the digits service: today's parser against msgspec.

    bazel run //bench:parsers
    bazel run //bench:parsers -- --rounds 7 --seconds 0.5

Bodies are real 8x8 digit images from the data set: `/v1/predict` with 1, 32
and 256 images (pixel levels as JSON integers), and OIP infer requests of the
same images (INT32, flat data). Candidates, each from body bytes to the
validated rows of floats the batcher takes:

  today    orjson.loads + the digits handler's task_request / protocol.parse_infer (hand checks)
  msgspec  msgspec.json.decode into typed structs (fields, types, ranges and
           lengths checked by the decoder), then what a type cannot say
           (shape against data, nesting forms) by hand

Each round times every candidate on every body in turn (interleaved, so load
on the machine hits all alike); the table gives the median over rounds of µs
per body. Both candidates are checked to give the same rows first.
"""

import argparse
import statistics
import time
from typing import Annotated, Any, Optional

import msgspec
import numpy as np

from models.digits import paths
from serving import contract, protocol
from serving.handler import InputSpec
from services.digits.handler import DEFAULT_TOP_K, DigitsHandler

SPEC = InputSpec(model_name="digits", input_name="pixels", n_inputs=64, image_shape=(8, 8),
                 max_level=16, labels=tuple("0123456789"), item="image", value="pixel")
HANDLER = DigitsHandler()
HANDLER.spec = SPEC

Level = Annotated[float, msgspec.Meta(ge=0, le=16)]
Row = Annotated[list[Level], msgspec.Meta(min_length=64, max_length=64)]


class Predict(msgspec.Struct, forbid_unknown_fields=True):
    """/v1/predict, flat images (the common form)."""

    instances: Annotated[list[Row], msgspec.Meta(min_length=1, max_length=contract.MAX_INSTANCES)]
    top_k: Annotated[int, msgspec.Meta(ge=1, le=10)] = DEFAULT_TOP_K


class Tensor(msgspec.Struct, forbid_unknown_fields=True):
    """One OIP input tensor, flat data."""

    name: str
    shape: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=1024)]],
                     msgspec.Meta(min_length=2, max_length=3)]
    datatype: str
    data: list[Level]
    parameters: Optional[dict[str, Any]] = None


class Output(msgspec.Struct, forbid_unknown_fields=True):
    """A requested output."""

    name: str
    parameters: Optional[dict[str, Any]] = None


class Infer(msgspec.Struct, forbid_unknown_fields=True):
    """An OIP infer request."""

    inputs: Annotated[list[Tensor], msgspec.Meta(min_length=1, max_length=1)]
    id: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None
    outputs: Optional[list[Output]] = None


PREDICT = msgspec.json.Decoder(Predict)
INFER = msgspec.json.Decoder(Infer)


def today_predict(body):
    """Today's path for /v1/predict."""
    return HANDLER.task_request(protocol.parse_json(body))[0]


def today_infer(body):
    """Today's path for OIP infer."""
    return protocol.parse_infer(protocol.parse_json(body), SPEC).x


def msgspec_predict(body):
    """msgspec's path for /v1/predict (flat images; other forms would fall back)."""
    request = PREDICT.decode(body)
    return [[v + 0.0 for v in row] for row in request.instances]


def msgspec_infer(body):
    """msgspec's path for OIP infer (flat data)."""
    tensor = INFER.decode(body).inputs[0]
    if tensor.name != SPEC.input_name or tensor.datatype not in protocol.ACCEPTED_DATATYPES:
        raise ValueError("input")
    if tuple(tensor.shape[1:]) not in SPEC.row_shapes():
        raise ValueError("shape")
    n = SPEC.n_inputs
    data = tensor.data
    if len(data) != tensor.shape[0] * n:
        raise ValueError("count")
    if tensor.datatype.startswith(("INT", "UINT")) and not all(v.is_integer() for v in data):
        raise ValueError("integers")
    return [[v + 0.0 for v in data[r * n:(r + 1) * n]] for r in range(tensor.shape[0])]


def bodies(batches):
    """{(kind, batch): body bytes} of real images."""
    data = np.load(paths.dataset_path(), allow_pickle=False)["pixels"].astype(int)
    out = {}
    for batch in batches:
        rows = data[:batch].tolist()
        out[("predict", batch)] = msgspec.json.encode({"instances": rows, "top_k": 3})
        out[("infer", batch)] = msgspec.json.encode({"inputs": [{
            "name": "pixels", "shape": [batch, 64], "datatype": "INT32",
            "data": [v for row in rows for v in row]}]})
    return out


CANDIDATES = {
    "today": {"predict": today_predict, "infer": today_infer},
    "msgspec": {"predict": msgspec_predict, "infer": msgspec_infer},
}


def _time(parse, body, seconds):
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(20):
            parse(body)
        calls += 20
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls * 1e6


def main(argv=None):
    """Prints the Markdown table for docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="per candidate and body")
    args = parser.parse_args(argv)
    cases = bodies((1, 32, 256))
    for (kind, _), body in cases.items():
        results = [parsers[kind](body) for parsers in CANDIDATES.values()]
        assert all(r == results[0] for r in results), kind
    samples = {(name, case): [] for name in CANDIDATES for case in cases}
    for _ in range(args.rounds):
        for case, body in cases.items():
            for name, parsers in CANDIDATES.items():
                samples[(name, case)].append(_time(parsers[case[0]], body, args.seconds))
    print("| body | bytes | today µs | msgspec µs | today / msgspec |")
    print("|---|---:|---:|---:|---:|")
    for case, body in cases.items():
        today = statistics.median(samples[("today", case)])
        fast = statistics.median(samples[("msgspec", case)])
        label = ("/v1/predict" if case[0] == "predict" else "OIP infer INT32") + \
            f", {case[1]} image{'s' if case[1] > 1 else ''}"
        print(f"| {label} | {len(body):,} | {today:.1f} | {fast:.1f} | {today / fast:.2f} |")
    print(f"\nmsgspec {msgspec.__version__}; median of {args.rounds} interleaved rounds.")


if __name__ == "__main__":
    main()
