"""The release gates, run on the pushed image (never a rebuild).

1. labels present and consistent with the image's content and its spec;
2. the model release gate the image's spec names (`release_gate`) on the model
   file taken out of the image, against the spec's release record;
3. API contract checks against a container started from that exact digest,
   with the spec's sample requests;
4. the operating point: latency and memory of that container within the
   bounds of the spec's `operating_point`.

Nothing here names a model: everything particular to one comes from the spec
(model_image, //modelship:defs.bzl).
"""

import dataclasses
import hashlib
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time

from tools.release import errors, imagespec, labels as labels_lib, skopeo

START_DEADLINE_S = 90
# The version headers every response of the serving runtime carries
# (serving/contract.py; the release tool does not import the runtime).
MODEL_VERSION_HEADER = "x-model-version"
API_VERSION_HEADER = "x-api-version"
# A line at least this often while a gate runs (pull, start, load), so a long
# validation is seen to be alive.
HEARTBEAT_S = 20.0


class Progress:
    """`release: validate: ...` lines on stderr: each gate as it starts and ends,
    with elapsed times, and a heartbeat while one runs long. stdout stays the report."""

    def __init__(self, stream=None, heartbeat_s=None):
        self.stream = stream or sys.stderr
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self.started = time.monotonic()
        self.current = None
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = None

    def say(self, message):
        """One progress line, with the time since validation began."""
        with self._lock:
            print(f"release: validate: {message} ({time.monotonic() - self.started:.0f}s)",
                  file=self.stream, flush=True)
            self._last = time.monotonic()

    def step(self, name):
        """The step now running (named by heartbeats)."""
        self.current = name
        self.say(name)

    def __enter__(self):
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def _beat(self):
        while not self._done.wait(min(1.0, self.heartbeat_s / 4)):
            if self.current and time.monotonic() - self._last >= self.heartbeat_s:
                self.say(f"... still running: {self.current}")


def _quiet(message):
    del message


@dataclasses.dataclass(frozen=True)
class Check:
    """The outcome of one gate check; `figures` go into the history record."""

    gate: str
    name: str
    ok: bool
    detail: str
    figures: dict = dataclasses.field(default_factory=dict)


def load_operating_point(path):
    """Validated bounds of the operating point (collects every problem)."""
    try:
        with open(path, encoding="utf-8") as text:
            bounds = json.load(text)
    except (OSError, ValueError) as err:
        raise errors.GateError(f"cannot read the operating point {path}: {err}") from err
    problems = []
    for key, low, high in (("latency_p95_ms", 0, 10_000), ("memory_mib", 0, 65_536),
                           ("tolerance", 0, 5), ("requests", 10, 100_000),
                           ("warmup_requests", 0, 10_000)):
        value = bounds.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low <= value <= high:
            problems.append(f"'{key}' must be a number from {low} to {high}, got {value!r}")
    if problems:
        raise errors.GateError(f"{path} is invalid: " + "; ".join(problems))
    return bounds


# --- gate 1: labels -------------------------------------------------------------

def label_checks(pushed, model_bytes, served_name=None):
    """Labels present, stamped, clean, of their declared types, the model version the
    shipped model's, and the served name (when labelled) the spec's."""
    found = labels_lib.problems(pushed.labels) + labels_lib.type_problems(pushed.labels)
    checks = [Check("labels", "present, stamped, from a clean tree", not found,
                    "; ".join(found) or
                    f"revision {pushed.labels[labels_lib.REVISION][:12]}, model "
                    f"{pushed.labels[labels_lib.MODEL_VERSION][:12]}, API "
                    f"{pushed.labels[labels_lib.API_VERSION]}")]
    shipped = hashlib.sha256(model_bytes).hexdigest()
    claimed = pushed.labels.get(labels_lib.MODEL_VERSION)
    checks.append(Check("labels", "model version label is the shipped model's sha256",
                        claimed == shipped, f"label {claimed}, shipped {shipped}"))
    labelled = pushed.labels.get(labels_lib.SERVED_NAME)
    if served_name is not None and labelled is not None:
        checks.append(Check("labels", "served-name label is the spec's served_name",
                            labelled == served_name,
                            f"label {labelled!r}, spec {served_name!r}"))
    return checks


# --- gate 2: the model release gate ------------------------------------------------

def model_checks(spec, model_path):
    """The model release gate's checks on the artifact shipped in the image; each
    check's figures (e.g. the measured test accuracy) go into the history."""
    return [Check("model", check.name, check.ok, check.detail, check.figures)
            for check in imagespec.run_gate(spec, model_path)]


# --- gate 3 and 4: a container from the digest ---------------------------------------

class Container:
    """The image, pulled by digest into a private dockerd and running on a free port."""

    def __init__(self, settings, pushed, daemon, scratch):
        self.settings, self.pushed, self.daemon, self.scratch = settings, pushed, daemon, scratch
        self.port = None
        self.name = "release-validate"
        self.image_id = None

    def start(self, runtime, progress=None):
        """Pulls by digest, checks the loaded image is that digest's, runs it until ready."""
        step = progress.step if progress else _quiet
        archive = os.path.join(self.scratch, "image.docker.tar")
        ref = "modelship-release/validate:candidate"
        step(f"pulling {self.pushed.digest[:19]} into a private dockerd")
        skopeo.copy(self.settings, f"docker://{self.pushed.reference}",
                    f"docker-archive:{archive}:{ref}")
        self.daemon.docker("load", "--quiet", "--input", archive)
        os.unlink(archive)
        self.image_id = self.daemon.docker("image", "inspect", "--format", "{{.Id}}",
                                           ref).stdout.strip()
        self.port = runtime.free_port()
        step("starting the container and waiting until it is ready")
        self.daemon.docker("run", "--detach", "--network", "host", "--read-only",
                           "--name", self.name, "--env", "MODELSHIP_HOST=127.0.0.1",
                           "--env", f"MODELSHIP_PORT={self.port}", "--env", "MODELSHIP_CACHE=off",
                           ref)
        try:
            runtime.wait_until(
                lambda: runtime.http(self.port, "GET", "/v2/health/ready")[0] == 200,
                START_DEADLINE_S, "the container to report ready")
        except AssertionError as err:
            logs = self.daemon.docker("logs", self.name, check=False).stdout[-1500:]
            raise errors.GateError(f"the container from {self.pushed.digest} never became "
                                   f"ready: {err}\n{logs}") from err


def _request(port, method, path, body=None):
    """(status, headers, parsed or raw body) over one connection."""
    import http.client  # pylint: disable=import-outside-toplevel
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        response = conn.getresponse()
        raw = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    try:
        return response.status, headers, json.loads(raw), raw
    except ValueError:
        return response.status, headers, None, raw


def _batch(body):
    """The first dimension of the first input of an infer request body."""
    return body["inputs"][0]["shape"][0]


def contract_checks(container, spec, samples):
    """The service's public contract, checked against the running container with the
    spec's sample requests (`samples`, imagespec.requests)."""
    import jsonschema  # pylint: disable=import-outside-toplevel
    port, labels = container.port, container.pushed.labels
    model = spec.served_name
    checks = []

    def check(name, ok, detail):
        checks.append(Check("contract", name, bool(ok), detail))

    check("the running image is the validated digest",
          container.image_id == container.pushed.config_digest,
          f"loaded image id {container.image_id}, manifest config "
          f"{container.pushed.config_digest}")
    status, headers, body, raw = _request(port, "GET", "/v2/health/live")
    check("GET /v2/health/live is live",
          status == 200 and isinstance(body, dict) and body.get("live") is True,
          f"{status} {raw[:80]}")
    status, headers, body, raw = _request(port, "GET", "/v2/health/ready")
    check("GET /v2/health/ready is ready",
          status == 200 and isinstance(body, dict) and body.get("ready") is True,
          f"{status} {raw[:80]}")
    status, headers, body, raw = _request(port, "GET", "/v2")
    check("GET /v2 names the server",
          status == 200 and isinstance(body, dict) and isinstance(body.get("name"), str)
          and body["name"] and isinstance(body.get("version"), str),
          f"{status} {raw[:120]}")
    infer = samples["infer"]
    wanted = [tensor["name"] for tensor in infer["inputs"]]
    status, headers, body, raw = _request(port, "GET", f"/v2/models/{model}")
    served_inputs = [i.get("name") for i in body.get("inputs", []) if isinstance(i, dict)] \
        if isinstance(body, dict) and isinstance(body.get("inputs"), list) else []
    ok = status == 200 and isinstance(body, dict) and body.get("name") == model \
        and set(wanted) <= set(served_inputs)
    check(f"GET /v2/models/{model} metadata names the inputs {', '.join(wanted)}", ok,
          f"{status} {raw[:160]}")
    status, headers, body, raw = _request(port, "POST", f"/v2/models/{model}/infer", infer)
    outputs = body.get("outputs") if isinstance(body, dict) else None
    batch = _batch(infer)
    ok = status == 200 and isinstance(outputs, list) and bool(outputs) and all(
        isinstance(o, dict) and isinstance(o.get("name"), str)
        and isinstance(o.get("datatype"), str) and isinstance(o.get("shape"), list)
        and o["shape"][:1] == [batch] and "data" in o for o in outputs) \
        and body.get("model_name") == model
    check(f"POST /v2/models/{model}/infer answers a batch of {batch}", ok,
          f"{status} {raw[:160]}")
    served_model = headers.get(MODEL_VERSION_HEADER)
    check("X-Model-Version is the label's model version",
          served_model == labels.get(labels_lib.MODEL_VERSION),
          f"served {served_model}, label {labels.get(labels_lib.MODEL_VERSION)}")
    served_api = headers.get(API_VERSION_HEADER)
    check("X-API-Version is the label's API version",
          served_api == labels.get(labels_lib.API_VERSION),
          f"served {served_api}, label {labels.get(labels_lib.API_VERSION)}")
    if spec.task is not None:
        path = spec.task.path
        schema = imagespec.read_json(spec, spec.task.schema, "task.schema")
        status, headers, body, raw = _request(port, "POST", path, samples["task"])
        problems = [e.message for e in
                    jsonschema.Draft202012Validator(schema).iter_errors(body)] \
            if status == 200 else [f"HTTP {status} {raw[:120]}"]
        check(f"POST {path} matches {os.path.basename(spec.task.schema.path)}", not problems,
              "; ".join(problems)[:300] or "valid")
    if spec.contract is not None:
        with open(imagespec.local(spec, spec.contract, "contract"), "rb") as text:
            checked_in = text.read()
        status, headers, body, raw = _request(port, "GET", "/openapi.json")
        check(f"served /openapi.json equals {spec.contract.path}",
              status == 200 and raw == checked_in,
              "identical" if raw == checked_in else f"{status}, {len(raw)} bytes differ from "
              f"the checked-in {len(checked_in)}")
    status, headers, body, raw = _request(port, "POST", f"/v2/models/{model}/infer",
                                          b"{not json")
    check("a bad request gets 400 {\"error\": ...}",
          status == 400 and isinstance(body, dict) and isinstance(body.get("error"), str),
          f"{status} {raw[:120]}")
    return checks


def _memory_mib(daemon, name):
    usage = daemon.docker("stats", "--no-stream", "--format", "{{.MemUsage}}",
                          name).stdout.strip().split("/")[0].strip()
    match = re.match(r"^([0-9.]+)\s*([KMG]i?B|B)$", usage)
    if not match:
        raise errors.GateError(f"cannot read the container's memory from {usage!r}")
    scale = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "kB": 1e3, "KB": 1e3,
             "MB": 1e6, "GB": 1e9}[match.group(2)]
    return float(match.group(1)) * scale / (1 << 20)


def operating_point_checks(container, bounds, model, bodies, progress=None):
    """p95 latency of single infer requests to /v2/models/<model>/infer, one at a time,
    cycling through the sample `bodies`, and memory after that load."""
    total = int(bounds["requests"]) + int(bounds["warmup_requests"])
    timings = []
    shown = time.monotonic()
    for index, body in zip(range(total), itertools.cycle(bodies)):
        if progress and time.monotonic() - shown >= progress.heartbeat_s / 2:
            progress.say(f"operating point: {index}/{total} requests sent")
            shown = time.monotonic()
        start = time.perf_counter()
        status, _, _, raw = _request(container.port, "POST", f"/v2/models/{model}/infer",
                                     body)
        elapsed = (time.perf_counter() - start) * 1000
        if status != 200:
            raise errors.GateError(f"/v2/models/{model}/infer answered {status} under load "
                                   f"(sample request {index % len(bodies)}): {raw[:200]}")
        if index >= bounds["warmup_requests"]:
            timings.append(elapsed)
    p95 = statistics.quantiles(timings, n=20)[-1]
    p50 = statistics.median(timings)
    memory = _memory_mib(container.daemon, container.name)
    tolerance = bounds["tolerance"]
    latency_limit = bounds["latency_p95_ms"] * (1 + tolerance)
    memory_limit = bounds["memory_mib"] * (1 + tolerance)
    return [
        Check("operating point", f"p95 latency <= {bounds['latency_p95_ms']} ms "
              f"(+{tolerance:.0%})", p95 <= latency_limit,
              f"p95 {p95:.2f} ms, p50 {p50:.2f} ms over {len(timings)} requests, limit "
              f"{latency_limit:.2f} ms", {"latency_p95_ms": round(p95, 3),
                                          "latency_p50_ms": round(p50, 3)}),
        Check("operating point", f"memory <= {bounds['memory_mib']} MiB (+{tolerance:.0%})",
              memory <= memory_limit,
              f"{memory:.1f} MiB after the load, limit {memory_limit:.1f} MiB",
              {"memory_mib": round(memory, 1)}),
    ]


def run_all(settings, pushed, spec, bounds=None):
    """Every gate, in order; returns the list of Checks. All gates run even when an
    earlier one failed, so one report shows every problem."""
    from tools.containers import runtime  # pylint: disable=import-outside-toplevel
    bounds = bounds or load_operating_point(
        imagespec.local(spec, spec.operating_point, "operating_point"))
    samples = imagespec.requests(spec)
    imagespec.gate_function(spec)  # a gate that cannot be imported stops before the pull
    with Progress() as progress:
        progress.step("1/4 labels: reading the model from the image")
        model_bytes = pushed.file(spec.model_in_image)
        checks = label_checks(pushed, model_bytes, spec.served_name)
        with tempfile.TemporaryDirectory(prefix="modelship-validate-") as scratch:
            model_path = os.path.join(scratch, spec.model_file)
            with open(model_path, "wb") as out:
                out.write(model_bytes)
            progress.step(f"2/4 model release gate {spec.release_gate} on the shipped model")
            checks += model_checks(spec, model_path)
            try:
                progress.step("3/4 API contract: starting a private dockerd")
                with runtime.dockerd(prefix="modelship-release-dockerd-") as daemon:
                    container = Container(settings, pushed, daemon, scratch)
                    container.start(runtime, progress)
                    progress.step("3/4 API contract checks on the running container")
                    checks += contract_checks(container, spec, samples)
                    progress.step(f"4/4 operating point: {bounds['warmup_requests']} warm-up "
                                  f"and {bounds['requests']} measured requests")
                    checks += operating_point_checks(container, bounds, spec.served_name,
                                                     samples["operating_point"], progress)
                    progress.current = "stopping the container and dockerd"
            except runtime.ContainerError as err:
                raise errors.GateError(f"the container runtime failed: {err}") from err
        failed = sum(1 for check in checks if not check.ok)
        progress.current = None
        progress.say(f"done: {len(checks)} checks, {failed} failed")
    return checks
