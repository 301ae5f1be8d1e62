"""Drives wrk (Debian's `wrk`) against a server on 127.0.0.1 and parses its figures.

wrk is given a Lua script that POSTs a fixed JSON body and prints the latency
percentiles and counts as one JSON line, so nothing depends on wrk's
human-readable summary format.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"

_SCRIPT = """
local bodies = {%(bodies)s}
local headers = {["Content-Type"] = "application/json"}
local path = "%(path)s"
local delay_ms = %(delay_ms)s
local limit = %(limit)s
local i = 0
local seen = 0

request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", path, headers, bodies[i])
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end

if limit > 0 then
  response = function(status, headers, body)
    seen = seen + 1
    if seen >= limit then wrk.thread:stop() end
  end
end

done = function(summary, latency, requests)
  local out = string.format(
    '{"requests":%%d,"duration_us":%%d,"errors":%%d,"non_2xx":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max)
  io.write("WRK_JSON " .. out .. "\\n")
end
"""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until_up(url, deadline_s=30.0, process=None):
    """Polls `url` until it answers 200, the process dies, or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was up")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not up after {deadline_s} s")


# The workspace root this code runs from (source tree or runfiles): servers start
# there, so `python -m` imports the same (built) packages as this process.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(argv, env=None, cwd=ROOT, stderr=None):
    """Starts a server process in its own session (stopped by `stop`).

    Its output is discarded and its errors go to ours, or to `stderr` (a file).
    """
    return subprocess.Popen(  # pylint: disable=consider-using-with
        argv, env=env, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=sys.stderr if stderr is None else stderr)


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` and its child processes, so far."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    total = 0.0
    for one in pids:
        with open(f"/proc/{one}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def stop(process, timeout=15):
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(url, body, connections, duration_s, threads=1, timeout_s=5, delay_ms=0, limit=0):
    """One wrk run; returns a dict of figures (rps, p50_ms, p90_ms, p99_ms, errors).

    `body`: bytes, or a list of bodies sent in turn. `delay_ms`: each connection
    pauses this long between requests (pacing below saturation). `limit`: stop
    after this many responses (one wrk thread), or when `duration_s` is up.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk not found: install Debian's `wrk` package")
    bodies = body if isinstance(body, list) else [body]
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_SCRIPT % {
            "bodies": ",".join(json.dumps(b.decode()) for b in bodies), "path": path,
            "delay_ms": delay_ms, "limit": limit})
    try:
        out = subprocess.run(
            [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s}s",
             "--timeout", f"{timeout_s}s", "-s", script.name, url],
            check=True, capture_output=True, text=True, timeout=duration_s + 60).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    raw = json.loads(line[len("WRK_JSON "):])
    seconds = raw["duration_us"] / 1e6
    return {
        "connections": connections,
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50_us"] / 1e3,
        "p90_ms": raw["p90_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "errors": raw["errors"],
        "non_2xx": raw["non_2xx"],
    }


def markdown_table(rows, first_column):
    """Rows of (name, figures) as a Markdown table (server CPU per request if measured)."""
    cpu = all("cpu_us" in f for _, f in rows)
    lines = [f"| {first_column} | req/s |" + (" server CPU µs/req |" if cpu else "")
             + " p50 ms | p90 ms | p99 ms | errors | non-2xx |",
             "|---|---:|" + ("---:|" if cpu else "") + "---:|---:|---:|---:|---:|"]
    for name, f in rows:
        lines.append(f"| {name} | {f['rps']:,.0f} |" + (f" {f['cpu_us']:.0f} |" if cpu else "")
                     + f" {f['p50_ms']:.2f} | {f['p90_ms']:.2f} | {f['p99_ms']:.2f} | "
                     f"{f['errors']:.0f} | {f['non_2xx']:.0f} |")
    return "\n".join(lines)
