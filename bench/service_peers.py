"""The service against its own stack's limit and against MLServer and KServe, in one run.

    bazel run //bench:service_peers -- --duration 10 --rounds 3

Every server is one process on 127.0.0.1, gets the same Open Inference
Protocol v2 request (one real 8x8 digit image, FP32, cycling through the
data set's 1,797 images) and is measured with the same wrk settings (one
thread, 64 connections), interleaved round by round (noise hits all alike);
the median of the rounds is reported. Targets:

  infer    our service (`python3 -m serving`, digits handler, default settings):
           POST /v2/models/digits/infer
  task     the same server's task endpoint, POST /v1/predict (the same image)
  uncached a second server of ours with MODELSHIP_CACHE=off, OIP infer (the
           default cache answers every repeated image without the model)
  no-op    the same stack with one benchmark-only route that reads the body and
           answers a constant JSON object (bench/noop_server.py)
  before   the digits service as it was before it moved onto the serving runtime
           (--before, default commit bfcb0d8: its own services/digits package, taken
           from git, with this checkout's model, inference code and dependencies)
  mlserver MLServer 1.7.1, a custom runtime around the same model
           (bench/peer_mlserver.py)
  kserve   KServe 0.21's Python model server, the same way (peer_kserve.py)

MLServer and KServe cannot share one environment (their pins of Starlette
conflict), so each gets its own virtualenv, created by this command from its
hash-pinned lock (third_party/python/bench-mlserver.txt, bench-kserve.txt)
under ~/.cache/modelship/bench-venvs, reused while the lock is unchanged.
They never touch the product's locks or image. A peer that cannot be
installed or started is reported with the reason and left out; the rest runs.

Before any timing, every server must answer the check images with the labels
the model gives in this process (the kernel our service runs); a server that
answers differently is not timed. With --max-load, timing waits (polling every
30 s, up to --wait-load seconds) until the 1-minute load average is below it,
and gives up without timing if it never is.
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

from inference.model import Model
from models.digits import paths
from bench import wrk

CONNECTIONS = 64
HANDLER = "services.digits.handler:DigitsHandler"
MODEL_NAME = "digits"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
TASK_PATH = "/v1/predict"
NOOP_PATH = "/bench/noop"  # bench/noop_server.py
CHECK_IMAGES = 32
# The last commit before services/digits moved onto serving/ (d149d03): the
# "before" of the move, measured in the same run as the "after".
BEFORE = "bfcb0d8"
LOCKS = {  # peer -> its lock under third_party/python
    "mlserver": "third_party/python/bench-mlserver.txt",
    "kserve": "third_party/python/bench-kserve.txt",
}
VENVS = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                     "modelship", "bench-venvs")


class PeerUnavailable(Exception):
    """A peer server could not be installed, started or checked; the message says why."""


# --- requests -----------------------------------------------------------------

def oip_body(row, input_name="pixels"):
    """The OIP v2 infer request for one image (FP32, flat [1, 64])."""
    return json.dumps({"inputs": [{"name": input_name, "shape": [1, len(row)],
                                   "datatype": "FP32", "data": row}]},
                      separators=(",", ":")).encode()


def task_body(row):
    """The same image as a task request (as bench/service_load.py sends it)."""
    return json.dumps({"instances": [row], "top_k": 3}, separators=(",", ":")).encode()


def images():
    """The data set's images as lists of ints."""
    return np.load(paths.dataset_path(), allow_pickle=False)["pixels"].tolist()


def expected_labels(rows):
    """The label of each row by the model, in this process."""
    model = Model.load(paths.model_path())
    return [model.labels[max(range(len(p)), key=p.__getitem__)]
            for p in model.predict_proba(rows)]


def label_of(kind, doc):
    """The predicted label in a response document of an infer or task request."""
    if kind == "task":
        return doc["predictions"][0]["label"]
    for output in doc["outputs"]:
        if output["name"] == "label":
            data = output["data"]
            while isinstance(data, list):  # MLServer nests BYTES as [N, 1]
                data = data[0]
            return data
    raise ValueError(f"no 'label' output in {str(doc)[:200]}")


# --- servers ------------------------------------------------------------------

class Server:
    """A server process under test: argv, env, the URL that says it is ready."""

    def __init__(self, name, argv, env, ready_path, port, cwd=wrk.ROOT, log=None):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.ready_path, self.cwd, self.log = ready_path, cwd, log
        self.process = None

    def url(self, path):
        """http://127.0.0.1:port + path."""
        return f"http://{wrk.HOST}:{self.port}{path}"

    def start(self, deadline_s):
        """Starts the process and waits until it is ready."""
        stderr = open(self.log, "ab") if self.log else None  # pylint: disable=consider-using-with
        try:
            self.process = wrk.start(self.argv, env=self.env, cwd=self.cwd, stderr=stderr)
        finally:
            if stderr:
                stderr.close()
        wrk.wait_until_up(self.url(self.ready_path), deadline_s, self.process)

    def stop(self):
        """Stops the process (if started)."""
        if self.process is not None:
            wrk.stop(self.process)

    def cpu_seconds(self):
        """User + system CPU time of the server and its child processes so far."""
        return wrk.cpu_seconds(self.process.pid)


def _product_env(port, **extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MODELSHIP_HANDLER": HANDLER,
           "MODELSHIP_MODEL_PATH": paths.model_path(), "MODELSHIP_LOG_LEVEL": "warning",
           "MODELSHIP_PORT": str(port)}
    env.update(extra)
    return env


def our_service(name="ours", **settings):
    """`python3 -m serving` with the digits handler, default settings but `settings`."""
    port = wrk.free_port()
    return Server(name, [sys.executable, "-m", "serving"], _product_env(port, **settings),
                  "/v2/health/ready", port)


def noop_service():
    """The same stack plus the benchmark-only no-op route."""
    port = wrk.free_port()
    return Server("no-op", [sys.executable, "-m", "bench.noop_server"],
                  _product_env(port), "/v2/health/ready", port)


def before_service(rev, workdir):
    """The digits service at commit `rev`: its services/ package from git, first on the
    path, over this checkout's model, inference package and dependencies (DIGITS_*
    settings then). Raises PeerUnavailable when it cannot be had."""
    checkout = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not checkout:
        raise PeerUnavailable("--before needs a git checkout: run with `bazel run`")
    tree = os.path.join(workdir, "before")
    os.makedirs(tree)
    archive = os.path.join(workdir, "before.tar")
    with open(archive, "wb") as out:
        done = subprocess.run(["git", "-C", checkout, "archive", "--format=tar", rev,
                               "services"], stdout=out, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise PeerUnavailable(f"git archive {rev} failed: {done.stderr.decode().strip()}")
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        if any(m.name.startswith("/") or ".." in m.name.split("/") or m.issym() or m.islnk()
               for m in members):
            raise PeerUnavailable(f"git archive {rev} holds a path outside services/")
        tar.extractall(tree, members)
    port = wrk.free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree] + sys.path),
           "DIGITS_MODEL_PATH": paths.model_path(), "DIGITS_LOG_LEVEL": "warning",
           "DIGITS_PORT": str(port)}
    # cwd: `python -m` puts it first on the path, ahead of PYTHONPATH.
    return Server(f"before ({rev})", [sys.executable, "-m", "services.digits"], env,
                  "/v2/health/ready", port, cwd=tree, log=os.path.join(workdir, "before.log"))


def _peer_env(venv):
    """A peer's environment: its venv, and of this workspace only the source root (the
    inference package and the peer modules), none of the product's own dependencies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"PYTHONPATH": wrk.ROOT, "PYTHONNOUSERSITE": "1", "VIRTUAL_ENV": venv,
                "PATH": os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")})
    return env


def mlserver(venv, workdir):
    """MLServer 1.7.1 serving the digits runtime, one process (no parallel workers)."""
    port, grpc_port, metrics_port = wrk.free_port(), wrk.free_port(), wrk.free_port()
    repository = os.path.join(workdir, "mlserver")
    write_mlserver_repository(repository, paths.model_path(), port, grpc_port, metrics_port)
    return Server("mlserver", [os.path.join(venv, "bin", "mlserver"), "start", repository],
                  _peer_env(venv), f"/v2/models/{MODEL_NAME}/ready", port, cwd=repository,
                  log=os.path.join(workdir, "mlserver.log"))


def write_mlserver_repository(folder, model_path, http_port, grpc_port, metrics_port):
    """settings.json and digits/model-settings.json for `mlserver start folder`.

    One process (`parallel_workers: 0`: inference in the server process), debug
    (access logs) off; metrics and gRPC as by default, on their own ports.
    """
    os.makedirs(os.path.join(folder, MODEL_NAME), exist_ok=True)
    settings = {"host": wrk.HOST, "http_port": http_port, "grpc_port": grpc_port,
                "metrics_port": metrics_port, "parallel_workers": 0, "debug": False}
    model = {"name": MODEL_NAME, "implementation": "bench.peer_mlserver.DigitsRuntime",
             "parameters": {"uri": os.path.abspath(model_path)}}
    with open(os.path.join(folder, "settings.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f)
    with open(os.path.join(folder, MODEL_NAME, "model-settings.json"), "w",
              encoding="utf-8") as f:
        json.dump(model, f)


def kserve(venv, workdir):
    """KServe's model server with the digits model, one uvicorn worker."""
    port = wrk.free_port()
    return Server("kserve", [os.path.join(venv, "bin", "python"), "-m", "bench.peer_kserve",
                             paths.model_path(), str(port)],
                  _peer_env(venv), f"/v2/models/{MODEL_NAME}/ready", port,
                  log=os.path.join(workdir, "kserve.log"))


def peer_venv(peer, root=VENVS, python=sys.executable):
    """The peer's virtualenv, created from its lock unless one for that lock exists.

    Raises PeerUnavailable with pip's own words when the install fails.
    """
    lock = os.path.join(wrk.ROOT, LOCKS[peer])
    with open(lock, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    venv = os.path.join(root, f"{peer}-{digest}")
    if os.path.exists(os.path.join(venv, ".complete")):
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    steps = ([python, "-m", "venv", venv],
             [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", "--require-hashes", "--no-deps",
              "--only-binary=:all:", "-r", lock])
    print(f"{peer}: creating {venv} from {LOCKS[peer]}", file=sys.stderr, flush=True)
    for argv in steps:
        done = subprocess.run(argv, env=clean, capture_output=True, text=True, check=False,
                              timeout=1800)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            errors = [line for line in (done.stderr or done.stdout).splitlines()
                      if line.strip() and not line.startswith("WARNING: Location")]
            raise PeerUnavailable(f"`{' '.join(argv[:4])} ...` failed ({done.returncode}): "
                                  + " / ".join(errors[-6:]))
    with open(os.path.join(venv, ".complete"), "w", encoding="ascii") as f:
        f.write(LOCKS[peer] + "\n")
    return venv


# --- checks and measurements --------------------------------------------------

def post_json(url, body, timeout=10):
    """(status, parsed JSON) of a POST."""
    request = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()[:300]


def check(server, path, kind, rows, labels):
    """Raises PeerUnavailable unless `server` answers every row with the expected label."""
    for row, label in zip(rows, labels):
        body = task_body(row) if kind == "task" else oip_body(row)
        status, doc = post_json(server.url(path), body)
        if status != 200:
            raise PeerUnavailable(f"{server.name} {path} answered {status}: {doc!r}")
        if kind == "noop":
            if doc != {"ok": True}:
                raise PeerUnavailable(f"{server.name} {path} answered {doc!r}")
            continue
        got = label_of(kind, doc)
        if got != label:
            raise PeerUnavailable(f"{server.name} {path} labelled an image {got!r}; the "
                                  f"model says {label!r}")


def measure(server, path, load, duration_s, warm_up_s=2):
    """wrk figures at CONNECTIONS after a warm-up, plus the server's CPU µs per request."""
    wrk.run(server.url(path), load, connections=CONNECTIONS, duration_s=warm_up_s)
    cpu = server.cpu_seconds()
    figures = wrk.run(server.url(path), load, connections=CONNECTIONS, duration_s=duration_s)
    figures["cpu_us"] = (server.cpu_seconds() - cpu) / max(1, figures["requests"]) * 1e6
    return figures


def median_figures(runs):
    """Each figure's median over the runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def load_average():
    """The 1-minute load average."""
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


def wait_for_quiet(max_load, wait_s, poll_s=30):
    """Waits until the 1-minute load is below `max_load` (at most `wait_s`); the load seen."""
    deadline = time.monotonic() + wait_s
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        print(f"load average {load:.2f} >= {max_load}: waiting {poll_s} s", file=sys.stderr,
              flush=True)
        time.sleep(poll_s)
        load = load_average()
    return load


BEFORE_ROW = "before the move: OIP infer"
RATIOS = (  # (label, numerator row, denominator row)
    ("after the move / before (infer)", "ours: OIP infer", BEFORE_ROW),
    ("infer / no-op", "ours: OIP infer", "ours: no-op JSON (same stack)"),
    ("infer (cache off) / no-op", "ours: OIP infer, cache off", "ours: no-op JSON (same stack)"),
    ("ours (infer) / MLServer", "ours: OIP infer", "MLServer 1.7.1"),
    ("ours (infer) / KServe", "ours: OIP infer", "KServe 0.21"),
)


def ratio_lines(rows):
    """The ratios the issue tracks, from {target: figures}, where both rows exist."""
    return [f"- {label}: {rows[top]['rps'] / rows[bottom]['rps']:.2f}x req/s"
            for label, top, bottom in RATIOS if top in rows and bottom in rows]


def markdown(rows, skipped):
    """The results table and the ratios."""
    out = ["| server, endpoint | req/s | server CPU µs/req | p50 ms | p99 ms | errors | "
           "non-2xx |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in rows.items():
        out.append(f"| {name} | {f['rps']:,.0f} | {f['cpu_us']:.0f} | {f['p50_ms']:.2f} | "
                   f"{f['p99_ms']:.2f} | {f['errors']:.0f} | {f['non_2xx']:.0f} |")
    for name, why in skipped.items():
        out.append(f"| {name} | not measured: {why} | | | | | |")
    return "\n".join(out + [""] + ratio_lines(rows))


def _servers(args, peers, workdir, oip, task, skipped):
    """[(server, [(row name, path, kind, load)])] of every target that can be had;
    `skipped` gets the reason of each one that cannot."""
    uncached = our_service("ours, cache off", MODELSHIP_CACHE="off")
    servers = [(our_service(), [("ours: OIP infer", INFER_PATH, "infer", oip),
                                ("ours: task endpoint /v1/predict", TASK_PATH, "task",
                                 task)]),
               (uncached, [("ours: OIP infer, cache off", INFER_PATH, "infer", oip)]),
               (noop_service(), [("ours: no-op JSON (same stack)", NOOP_PATH, "noop",
                                  oip)])]
    if args.before:
        title = f"{BEFORE_ROW} ({args.before})"
        try:
            servers.append((before_service(args.before, workdir),
                            [(BEFORE_ROW, INFER_PATH, "infer", oip)]))
        except (PeerUnavailable, OSError, tarfile.TarError) as err:
            skipped[title] = str(err)
            print(f"{title}: left out: {err}", file=sys.stderr, flush=True)
    for peer in peers:
        title = {"mlserver": "MLServer 1.7.1", "kserve": "KServe 0.21"}[peer]
        try:
            venv = peer_venv(peer)
        except PeerUnavailable as err:
            skipped[title] = str(err)
            print(f"{title}: not installed: {err}", file=sys.stderr, flush=True)
            continue
        server = (mlserver if peer == "mlserver" else kserve)(venv, workdir)
        servers.append((server, [(title, INFER_PATH, "infer", oip)]))
    return servers


def main(argv=None):
    """Sets up every server, checks their answers, measures, prints the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (the median is reported)")
    parser.add_argument("--peers", default="mlserver,kserve",
                        help="comma-separated peers to include (mlserver, kserve; '' for none)")
    parser.add_argument("--before", default=BEFORE,
                        help=f"the commit whose digits service is the 'before' of the move "
                        f"onto serving/ (default {BEFORE}; '' leaves it out)")
    parser.add_argument("--max-load", type=float, default=None,
                        help="time only once the 1-minute load average is below this")
    parser.add_argument("--wait-load", type=int, default=900,
                        help="longest wait for --max-load, seconds (then give up, exit 1)")
    args = parser.parse_args(argv)
    # Servers run in sessions of their own: on SIGTERM, unwind so each one is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    peers = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(peers) - set(LOCKS))
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(LOCKS)}")

    rows = images()
    oip = [oip_body(r) for r in rows]
    task = [task_body(r) for r in rows]
    check_rows = rows[::len(rows) // CHECK_IMAGES][:CHECK_IMAGES]
    labels = expected_labels(check_rows)
    # (row name, server, path, kind, load)
    targets, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="service-peers-") as workdir, \
            contextlib.ExitStack() as stack:
        servers = _servers(args, peers, workdir, oip, task, skipped)
        for server, endpoints in servers:
            stack.callback(server.stop)
            try:
                server.start(deadline_s=180)
                for name, path, kind, load in endpoints:
                    check(server, path, kind, check_rows, labels)
                    targets.append((name, server, path, load))
            except (PeerUnavailable, RuntimeError) as err:
                for name, *_ in endpoints:
                    skipped[name] = str(err)
                log = f" (log: {server.log})" if server.log else ""
                print(f"{server.name}: left out: {err}{log}", file=sys.stderr, flush=True)
                if server.log and os.path.exists(server.log):
                    with open(server.log, encoding="utf-8", errors="replace") as f:
                        sys.stderr.write("".join(f.readlines()[-15:]))
        print(f"answers checked: {len(check_rows)} images, every measured server gave the "
              "model's labels", file=sys.stderr, flush=True)
        load_before = load_average() if args.max_load is None else \
            wait_for_quiet(args.max_load, args.wait_load)
        if args.max_load is not None and load_before >= args.max_load:
            print(f"service_peers: error: the load average stayed at {load_before:.2f} or more "
                  f"(--max-load {args.max_load}) for {args.wait_load} s; nothing timed",
                  file=sys.stderr)
            return 1
        started = datetime.datetime.now(datetime.timezone.utc)
        runs = {}
        for _ in range(args.rounds):
            for name, server, path, load in targets:
                figures = measure(server, path, load, args.duration)
                runs.setdefault(name, []).append(figures)
                print(f"{name}: {figures['rps']:,.0f} req/s, {figures['cpu_us']:.0f} CPU µs/req, "
                      f"p99 {figures['p99_ms']:.2f} ms, errors {figures['errors']}, "
                      f"non-2xx {figures['non_2xx']}", file=sys.stderr, flush=True)
        load_after = load_average()
    results = {name: median_figures(r) for name, r in runs.items()}
    print(f"\nDate: {started:%Y-%m-%d %H:%M} UTC. Machine: {os.cpu_count()} cores "
          f"({_cpu_model()}), {platform.system()} {platform.release()}. 1-minute load "
          f"average {load_before:.2f} before timing, {load_after:.2f} after.")
    print(f"wrk -t1 -c{CONNECTIONS}, {args.duration} s per measurement after a 2 s warm-up, "
          f"median of {args.rounds} interleaved rounds; one image per request, "
          f"{len(rows)} distinct images in turn.\n")
    print(markdown(results, skipped))
    return 0


def _cpu_model():
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii",
                                            errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


if __name__ == "__main__":
    sys.exit(main())
