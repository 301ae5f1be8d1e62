"""Worker memory and health latency of the digits service under slow and unfinished requests.

    bazel run //bench:slow_clients                       # every phase, defaults
    bazel run //bench:slow_clients -- --only bodies      # one phase
    MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT=33554432 bazel run //bench:slow_clients

Each phase starts the real server (`python -m serving` with the digits handler, the MODELSHIP_*
of this environment on top of the defaults), reads its worker's resident
memory (VmRSS) before and every 0.2 s while raw-socket clients on 127.0.0.1
hold requests open, and times `GET /v2/health/live` throughout. The figures
(a Markdown table for docs/benchmarks.md) bound what one worker can be made
to hold: compare them with the container's memory limit.

Phases:
  trickle  1,030 connections each sending 6 of 100 announced body bytes, one
           more byte every 0.3 s (issue 13's report).
  bodies   300 connections each sending 1 MiB - 10 bytes of a 1 MiB body
           (issue 13's report).
  heads    1,000 connections each sending 16,000 bytes of a request head that
           never ends (the most a connection buffers, MODELSHIP_MAX_HEADER_BYTES).
  full     16 clients posting valid 1,024-image requests as fast as answered.
  all      everything at once, in rounds of 12 s on one server (--rounds, 3 by
           default: memory freed between rounds is not all given back, so the
           peak of the last round is the figure): 16 unfinished 1 MiB bodies,
           480 trickling bodies, 480 unfinished 16,000-byte heads and the 16
           clients of `full`.
"""

import argparse
import concurrent.futures
import json
import os
import sys
import threading
import time

from services.digits.tests import harness

PHASES = ("trickle", "bodies", "heads", "full", "all")
MIB = 1 << 20


class Probe:
    """Peak worker RSS and the slowest health answer, sampled while a load runs."""

    def __init__(self, server):
        self.server = server
        self.before = server.worker_rss_mib()
        self.peak = self.before
        self.health = []

    def sample(self):
        """One RSS reading and one timed health call."""
        self.peak = max(self.peak, self.server.worker_rss_mib())
        start = time.monotonic()
        try:
            ok = self.server.get("/v2/health/live", timeout=30).status == 200
        except OSError:
            ok = False
        self.health.append((time.monotonic() - start) if ok else float("inf"))


def _heads(port, n, size):
    clients = harness.SlowClients(port, n, declared=0, sent=0)
    for conn in clients.conns:  # a head that never ends: no blank line
        conn["out"] = bytearray(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: "
                                + b"a" * size)
    return clients


def _full_request():
    images, _ = harness.images(1024, seed=7)
    data = [[min(16.0, v + 0.25) for v in row] for row in images]  # FP32, not integers
    return json.dumps({"inputs": [{"name": "pixels", "shape": [1024, 64], "datatype": "FP32",
                                   "data": data}]}).encode()


def _full_clients(server, n, stop, counts):
    body = _full_request()

    def client():
        while not stop.is_set():
            try:
                status = server.post("/v2/models/digits/infer", body,
                                     headers={"Content-Type": "application/json"}).status
            except OSError:
                status = "error"
            counts[status] = counts.get(status, 0) + 1

    pool = concurrent.futures.ThreadPoolExecutor(n)
    for _ in range(n):
        pool.submit(client)
    return pool


def _run(server, seconds, slow=(), trickle=False, full=0):
    probe = Probe(server)
    stop, counts = threading.Event(), {}
    pool = _full_clients(server, full, stop, counts) if full else None
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for clients in slow:
            clients.pump(0.3 / max(1, len(slow)))
            if trickle:
                clients.trickle()
        probe.sample()
    stop.set()
    if pool is not None:
        pool.shutdown(wait=True)
    outcomes = {}
    for clients in slow:
        for status, _, _, _ in clients.outcomes():
            outcomes[status] = outcomes.get(status, 0) + 1
        clients.close()
    return probe, outcomes, counts


def phase(name, env, n_rounds=3):
    """Runs one phase on a fresh server; rows of (name, before, peak, health max, outcomes)."""
    server = harness.Server(env)
    server.start()
    rows = []
    try:
        port = server.port
        if name == "trickle":
            runs = [_run(server, 12, [harness.SlowClients(port, 1030, 100, 6)], trickle=True)]
        elif name == "bodies":
            runs = [_run(server, 8, [harness.SlowClients(port, 300, MIB, MIB - 10)])]
        elif name == "heads":
            runs = [_run(server, 8, [_heads(port, 1000, 16000)])]
        elif name == "full":
            runs = [_run(server, 10, full=16)]
        else:
            runs = []
            for _ in range(n_rounds):
                slow = [harness.SlowClients(port, 16, MIB, MIB - 10),
                        harness.SlowClients(port, 480, 100, 6), _heads(port, 480, 16000)]
                runs.append(_run(server, 12, slow, trickle=True, full=16))
        for i, (probe, outcomes, counts) in enumerate(runs):
            label = name if len(runs) == 1 else f"{name}, round {i + 1}"
            answered = {**outcomes, **{f"infer {k}": v for k, v in counts.items()}}
            rows.append((label, probe.before, probe.peak, max(probe.health), answered))
    finally:
        server.stop()
    return rows


def main(argv=None):
    """Runs the phases; prints a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=PHASES, action="append")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of phase 'all'")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k.startswith("MODELSHIP_")}
    print(f"settings: {env or 'defaults'}", file=sys.stderr)
    rows = []
    for name in args.only or PHASES:
        print(f"phase {name} ...", file=sys.stderr)
        rows += phase(name, env, args.rounds)
    print("| phase | worker RSS before | peak | slowest health answer | outcomes |")
    print("|---|---:|---:|---:|---|")
    for label, before, peak, health, outcomes in rows:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items(), key=str))
        print(f"| {label} | {before:.1f} MiB | {peak:.1f} MiB | {health * 1000:.0f} ms | "
              f"{shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
