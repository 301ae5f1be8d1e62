"""Which Python HTTP stack serves a tiny JSON endpoint fastest on this machine?

    bazel run //bench:http_stacks [-- --duration 10 --connections 64]

Starts each candidate of `stack_apps.CANDIDATES` in turn on a free loopback
port, warms it up, and measures it with wrk at fixed concurrency (one wrk
thread: on 2 cores the server gets one core, wrk the other). Prints a
Markdown table for docs/benchmarks.md ("HTTP stack choice").
"""

import argparse
import statistics
import sys
import time

from bench import stack_apps, wrk

BODY = b'{"instances": [[0, 0, 5, 13, 9, 1, 0, 0]], "top_k": 3}'


def measure(name, connections, duration_s):
    """Starts candidate `name`, warms it up, returns its wrk figures."""
    port = wrk.free_port()
    server = wrk.start([sys.executable, "-m", "bench.stack_apps", name, str(port)])
    url = f"http://{wrk.HOST}:{port}/echo"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                wrk.run(url, BODY, connections=1, duration_s=1)
                break
            except Exception:  # pylint: disable=broad-except
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        wrk.run(url, BODY, connections=connections, duration_s=2)  # warm-up
        cpu = wrk.cpu_seconds(server.pid)
        figures = wrk.run(url, BODY, connections=connections, duration_s=duration_s)
        figures["cpu_us"] = (wrk.cpu_seconds(server.pid) - cpu) / figures["requests"] * 1e6
        return figures
    finally:
        wrk.stop(server)


def main(argv=None):
    """Measures every candidate; prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10, help="seconds per candidate")
    parser.add_argument("--only", action="append", help="candidate name (repeatable)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (the median of each figure is reported)")
    args = parser.parse_args(argv)
    runs = {}
    for _ in range(args.rounds):
        for name in args.only or stack_apps.CANDIDATES:
            figures = measure(name, args.connections, args.duration)
            print(f"{name}: {figures['rps']:,.0f} req/s, p99 {figures['p99_ms']:.2f} ms",
                  file=sys.stderr, flush=True)
            runs.setdefault(name, []).append(figures)
    rows = [(name, {key: statistics.median(f[key] for f in results) for key in results[0]})
            for name, results in runs.items()]
    rows.sort(key=lambda row: -row[1]["rps"])
    print(f"wrk -t1 -c{args.connections} -d{args.duration}s, POST /echo ({len(BODY)} B JSON), "
          f"median of {args.rounds} interleaved rounds\n")
    print(wrk.markdown_table(rows, "stack"))


if __name__ == "__main__":
    main()
