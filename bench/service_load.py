"""Load benchmark of the digits service against the FastAPI baseline, plus a soak.

    bazel run //bench:service_load                  # compare + half load + soak
    bazel run //bench:service_load -- --tune        # batcher settings grid
    bazel run //bench:service_load -- --only soak   # one phase

Every server runs on 127.0.0.1 and is measured with wrk (one thread, so on 2
cores the server has the other core), one after the other, in the same run.
Requests are `POST /v1/predict` with one real 8x8 digit image each, cycling
through the 1,797 images of the data set (the product's typical call).

Phases (the figures are printed as Markdown tables for docs/benchmarks.md):
  compare  saturation throughput and p50/p99 at 64 connections: the baseline
           (bench/baseline_fastapi.py), the service without cache, the
           service as configured by default (in-memory cache), and the service
           on the runner-up HTTP stack (uvicorn, bench/serve_uvicorn.py).
  half     the service paced to half of its saturation throughput: p99 there.
  soak     100,000 requests to the default service, over more distinct images
           than its cache holds; worker resident memory after a warm-up that
           fills the cache, and at the end.
  tune     (only with --tune) max batch size x max queue delay x kernel mode.
"""

import argparse
import functools
import math
import os
import sys
import time

import numpy as np

from models.digits import paths
from bench import wrk

CONNECTIONS = 64
HANDLER = "services.digits.handler:DigitsHandler"
SOAK_REQUESTS = 100_000
SOAK_WARM_UP = 25_000
SOAK_RANDOM_IMAGES = 20_000


def _body(row):
    return b'{"instances":[[' + ",".join(map(str, row)).encode() + b']],"top_k":3}'


def bodies():
    """One JSON request body per data set image."""
    data = np.load(paths.dataset_path(), allow_pickle=False)
    return [_body(row) for row in data["pixels"].tolist()]


def soak_bodies(n_random=SOAK_RANDOM_IMAGES):
    """The data set images plus `n_random` random ones: more distinct images than the
    cache holds, so the soak also runs the LRU's eviction."""
    rng = np.random.default_rng(20261125)
    return bodies() + [_body(row) for row in rng.integers(0, 17, (n_random, 64)).tolist()]


class Target:
    """A server process under test: the service (with MODELSHIP_* env) or the baseline."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.port = wrk.free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {}),
                    "MODELSHIP_PORT": str(self.port)}
        self.process = None

    @property
    def url(self):
        """The /v1/predict URL."""
        return f"http://{wrk.HOST}:{self.port}/v1/predict"

    def __enter__(self):
        self.process = wrk.start(self.argv, env=self.env)
        wrk.wait_until_up(f"http://{wrk.HOST}:{self.port}/v2/health/ready", 60, self.process)
        return self

    def __exit__(self, *exc):
        wrk.stop(self.process)

    def cpu_seconds(self):
        """User + system CPU time of the server and its children so far."""
        return wrk.cpu_seconds(self.process.pid)

    def worker_rss_kib(self):
        """Resident memory of the process that serves (Granian's worker, if any)."""
        pid = self.process.pid
        children = _children(pid)
        return _rss_kib(children[0] if children else pid)


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def service(name, **env):
    """The service with `env` settings (MODELSHIP_MODEL_PATH from runfiles)."""
    env = {"MODELSHIP_HANDLER": HANDLER, "MODELSHIP_MODEL_PATH": paths.model_path(),
           "MODELSHIP_LOG_LEVEL": "warning", **env}
    return Target(name, [sys.executable, "-m", "serving"], env)


def service_on_uvicorn(name, **env):
    """The same service through its ASGI adapter on uvicorn (the runner-up stack)."""
    env = {"MODELSHIP_HANDLER": HANDLER, "MODELSHIP_MODEL_PATH": paths.model_path(),
           "MODELSHIP_LOG_LEVEL": "warning", **env}
    return Target(name, [sys.executable, "-m", "bench.serve_uvicorn"], env)


def baseline():
    """The FastAPI baseline."""
    return Target("baseline: FastAPI + uvicorn, numpy reference",
                  [sys.executable, "-m", "bench.baseline_fastapi", paths.model_path(),
                   "{port}"])


def measure(target, load, connections, duration_s, **kwargs):
    """wrk figures plus the server's CPU time per request (less sensitive to noise)."""
    wrk.run(target.url, load, connections=connections, duration_s=2)  # warm-up
    cpu = target.cpu_seconds()
    figures = wrk.run(target.url, load, connections=connections, duration_s=duration_s,
                      **kwargs)
    figures["cpu_us"] = (target.cpu_seconds() - cpu) / max(1, figures["requests"]) * 1e6
    return figures


def rounds(makers, load, duration_s, n_rounds, connections=CONNECTIONS, low=None):
    """Measures each target `n_rounds` times, interleaved (noise hits all alike).

    Returns [(name, figures at `connections`, figures at `low` connections or None)]
    with the median of each figure over the rounds.
    """
    runs = {}
    for _ in range(n_rounds):
        for make in makers:
            with make() as target:
                high = measure(target, load, connections, duration_s)
                small = measure(target, load, low, duration_s) if low else None
            _progress(target.name, high)
            runs.setdefault(target.name, []).append((high, small))
    return [(name, _median([h for h, _ in pairs]),
             _median([s for _, s in pairs]) if low else None) for name, pairs in runs.items()]


def _median(figures):
    return {key: float(np.median([f[key] for f in figures])) for key in figures[0]}


def phase_compare(load, duration_s, n_rounds):
    """Baseline vs service at saturation."""
    makers = (baseline, lambda: service("service, cache off", MODELSHIP_CACHE="off"),
              lambda: service("service, default (in-memory cache)"),
              lambda: service_on_uvicorn("service on uvicorn (ASGI adapter), cache off",
                                         MODELSHIP_CACHE="off"))
    rows = [(name, high) for name, high, _ in rounds(makers, load, duration_s, n_rounds)]
    ratio = rows[1][1]["rps"] / rows[0][1]["rps"]
    print(f"\n### Saturation, {CONNECTIONS} connections, median of {n_rounds} interleaved "
          f"rounds of {duration_s} s\n")
    print(wrk.markdown_table(rows, "server"))
    print(f"\nservice (cache off) / baseline throughput: {ratio:.2f}x")
    return rows


def phase_half(load, duration_s, n_rounds, saturation_rps=None):
    """The service paced to half of its saturation throughput (median of `n_rounds`)."""
    with service("service, cache off", MODELSHIP_CACHE="off") as target:
        if saturation_rps is None:
            saturation_rps = measure(target, load, CONNECTIONS, duration_s)["rps"]
        target_rps = saturation_rps / 2
        # Each connection pauses between requests; together they offer about half the
        # saturation rate. rate = connections / (pause + latency): a short run measures
        # the latency, then the pause is set for the target (pauses are not latency).
        pause_ms = CONNECTIONS * 1000 / target_rps
        probe = measure(target, load, CONNECTIONS, 3, delay_ms=round(pause_ms))
        latency_ms = CONNECTIONS * 1000 / probe["rps"] - round(pause_ms)
        # wrk pauses in whole ms: round down (a little more load than half, not less).
        delay_ms = max(1, math.floor(pause_ms - latency_ms))
        runs = []
        for _ in range(n_rounds):
            runs.append(measure(target, load, CONNECTIONS, duration_s, delay_ms=delay_ms))
            _progress("half load", runs[-1])
    figures = _median(runs)
    print(f"\n### Half of saturation ({saturation_rps:,.0f} req/s saturation, target "
          f"{target_rps:,.0f} req/s, achieved {figures['rps'] / saturation_rps:.0%} of "
          f"saturation: {CONNECTIONS} connections pausing {delay_ms} ms)\n")
    print(f"median of {n_rounds} runs of {duration_s} s\n")
    print(wrk.markdown_table([("service, cache off", figures)], "server"))
    return figures


def phase_soak():
    """100,000 requests; worker RSS growth after a warm-up that fills the cache."""
    load = soak_bodies()
    with service("service, default (in-memory cache)") as target:
        rate = measure(target, load, CONNECTIONS, 3)["rps"]  # sizes the wrk runs below
        _requests(target, load, SOAK_WARM_UP, rate)  # the cache reaches its bound
        before = target.worker_rss_kib()
        start = time.monotonic()
        total, errors, non_2xx = _requests(target, load, SOAK_REQUESTS, rate)
        seconds = time.monotonic() - start
        after = target.worker_rss_kib()
    growth = (after - before) / before * 100
    print(f"\n### Soak: {total:,} requests (64 connections, about {seconds:.0f} s) after a "
          f"{SOAK_WARM_UP:,} request warm-up; {len(load):,} distinct images (the data set and "
          f"{SOAK_RANDOM_IMAGES:,} random ones), default cache bound of 10,000 images\n")
    print("| worker RSS after warm-up | after soak | growth | errors | non-2xx |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {before / 1024:.1f} MiB | {after / 1024:.1f} MiB | {growth:+.1f}% | "
          f"{errors} | {non_2xx} |")
    return growth


def _requests(target, load, count, rate):
    """Sends at least `count` requests, in wrk runs that stop after what remains.

    wrk stops sending at the limit but waits out its duration, so each run is
    sized from the measured `rate`, with a margin.
    """
    total = errors = non_2xx = 0
    while total < count:
        remaining = count - total
        figures = wrk.run(target.url, load, connections=CONNECTIONS,
                          duration_s=max(2, math.ceil(remaining / rate * 1.3)), limit=remaining)
        total += figures["requests"]
        errors += figures["errors"]
        non_2xx += figures["non_2xx"]
    return total, errors, non_2xx


def phase_tune(load, duration_s, n_rounds):
    """The batcher settings grid."""
    makers = []
    for kernel in ("thread", "inline"):
        for batch in (16, 64, 256):
            for delay in ("0", "0.5", "2"):
                makers.append(functools.partial(
                    service, f"kernel={kernel} max_batch={batch} delay={delay} ms",
                    MODELSHIP_CACHE="off", MODELSHIP_KERNEL=kernel,
                    MODELSHIP_MAX_BATCH_SIZE=str(batch), MODELSHIP_MAX_QUEUE_DELAY_MS=delay))
    rows = rounds(makers, load, duration_s, n_rounds, low=4)
    print(f"\n### Batcher settings, cache off, median of {n_rounds} interleaved rounds of "
          f"{duration_s} s\n")
    print("| settings | req/s @64 | CPU µs/req @64 | p50 ms @64 | p99 ms @64 | req/s @4 | "
          "p99 ms @4 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f, low in rows:
        print(f"| {name} | {f['rps']:,.0f} | {f['cpu_us']:.0f} | {f['p50_ms']:.2f} | "
              f"{f['p99_ms']:.2f} | {low['rps']:,.0f} | {low['p99_ms']:.2f} |")


def _progress(name, figures):
    print(f"{name}: {figures['rps']:,.0f} req/s, {figures.get('cpu_us', 0):.0f} CPU µs/req, "
          f"p50 {figures['p50_ms']:.2f} ms, "
          f"p99 {figures['p99_ms']:.2f} ms, errors {figures['errors']}, "
          f"non-2xx {figures['non_2xx']}", file=sys.stderr, flush=True)


def main(argv=None):
    """Runs the chosen phases."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--tune", action="store_true", help="run the batcher settings grid")
    parser.add_argument("--only", choices=("compare", "half", "soak", "tune"))
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per comparison (the median is reported)")
    args = parser.parse_args(argv)
    load = bodies()
    print(f"wrk -t1 -c{CONNECTIONS} (unless stated), POST /v1/predict, 1 image per request, "
          f"{len(load)} distinct images in turn")
    phases = [args.only] if args.only else (["tune"] if args.tune else
                                            ["compare", "half", "soak"])
    saturation = None
    if "compare" in phases:
        saturation = phase_compare(load, args.duration, args.rounds)[1][1]["rps"]
    if "half" in phases:
        phase_half(load, args.duration, args.rounds, saturation)
    if "soak" in phases:
        phase_soak()
    if "tune" in phases:
        phase_tune(load, args.duration, args.rounds)


if __name__ == "__main__":
    main()
