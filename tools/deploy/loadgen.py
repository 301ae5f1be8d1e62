"""A small bounded load generator: steady OIP infer traffic through the front door.

The request is any model's: derived from its own metadata (`GET
/v2/models/<name>`: one tensor per input, zeros of its datatype and shape) or
read from a file (`model_request`), so no model data is built in.

Threads each send requests at a fixed pace until stopped (or a deadline),
each on its own keep-alive connection, and record every request: when, the
status (or the connection error), the track nginx's split chose and the
address that finally answered (X-Modelship-Track / X-Modelship-Upstream,
two addresses when nginx retried on the other track). Bounded: it never
runs past `max_s`.
"""

import collections
import http.client
import json
import math
import threading
import time
import urllib.parse

from tools.deploy import nginx

Record = collections.namedtuple("Record", "time status track upstream error stale")
# What the load generator sends: `path` (/v2/models/<name>/infer) and the JSON `body`.
Request = collections.namedtuple("Request", "path body")
# The value every element of a generated input holds, by OIP datatype (integers: 0).
FILL = {"BOOL": False, "BYTES": "0", "FP16": 0.0, "FP32": 0.0, "FP64": 0.0}
DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
             "INT64", "FP16", "FP32", "FP64", "BYTES")
# A generated request stays small: a model asking for more gets --request FILE.
MAX_ELEMENTS = 1 << 20


class RequestError(Exception):
    """No infer request can be made (metadata unreadable or unusable, a bad file)."""


def infer_path(served_name):
    """The OIP infer route of a model, its name escaped for a URL path."""
    return f"/v2/models/{urllib.parse.quote(served_name, safe='')}/infer"


def request_from_metadata(served_name, metadata):
    """The infer Request the model's own metadata describes (`GET /v2/models/<name>`).

    One tensor per declared input, of its datatype and shape (a variable
    dimension, -1, taken as 1), every element the datatype's zero (FILL): no
    model data needed. A model whose zeros are not a valid request needs
    --request FILE instead.
    """
    inputs = metadata.get("inputs") if isinstance(metadata, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(f"the metadata of model {served_name!r} lists no inputs: pass "
                           "--request FILE (an OIP infer request body)")
    tensors = []
    for index, spec in enumerate(inputs):
        name = spec.get("name") if isinstance(spec, dict) else None
        datatype = spec.get("datatype") if isinstance(spec, dict) else None
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not (isinstance(name, str) and name and datatype in DATATYPES
                and isinstance(shape, list)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= -1
                        for d in shape)):
            raise RequestError(f"input {index} of model {served_name!r} is not "
                               "{name, datatype, shape} as the Open Inference Protocol "
                               f"declares inputs: {spec!r}; pass --request FILE")
        shape = [1 if d == -1 else d for d in shape]
        count = math.prod(shape)
        if count > MAX_ELEMENTS:
            raise RequestError(f"input {name!r} of model {served_name!r} has {count} elements "
                               f"(shape {shape}); pass --request FILE")
        tensors.append({"name": name, "shape": shape, "datatype": datatype,
                        "data": [FILL.get(datatype, 0)] * count})
    return Request(infer_path(served_name), json.dumps({"inputs": tensors}).encode())


def request_from_file(served_name, path):
    """The infer Request whose body is the JSON file at `path`."""
    try:
        with open(path, encoding="utf-8") as text:
            body = json.load(text)
    except (OSError, ValueError) as err:
        raise RequestError(f"--request {path}: cannot read an infer request body from it "
                           f"({err})") from err
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise RequestError(f"--request {path}: an OIP infer request body is a JSON object "
                           "with an \"inputs\" list")
    return Request(infer_path(served_name), json.dumps(body).encode())


def fetch_metadata(port, served_name, timeout_s=10.0):
    """The model metadata served at 127.0.0.1:port (`GET /v2/models/<name>`)."""
    path = f"/v2/models/{urllib.parse.quote(served_name, safe='')}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        text = response.read()
    except (OSError, http.client.HTTPException) as err:
        raise RequestError(f"GET {path} on 127.0.0.1:{port} failed: {err}") from err
    finally:
        conn.close()
    if response.status != 200:
        raise RequestError(f"GET {path} answered {response.status}: is the model served as "
                           f"{served_name!r}? ({text[:200]!r})")
    try:
        return json.loads(text)
    except ValueError as err:
        raise RequestError(f"GET {path} answered no JSON ({err})") from err


def model_request(port, served_name, request_file=None):
    """The Request to send: from `request_file` if given, else from the model's metadata."""
    if request_file:
        return request_from_file(served_name, request_file)
    return request_from_metadata(served_name, fetch_metadata(port, served_name))


class LoadGenerator:
    """`threads` clients at `rate` requests/s in total against 127.0.0.1:port, each
    sending `request` (a Request)."""

    def __init__(self, port, request, rate=60.0, threads=4, max_s=600.0,
                 timeout_s=10.0):  # pylint: disable=too-many-arguments
        self.port = port
        self.request = request
        self.pause = threads / rate
        self.threads = threads
        self.max_s = max_s
        self.timeout_s = timeout_s
        self.records = []  # Records
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []

    def start(self):
        """Starts the clients."""
        deadline = time.monotonic() + self.max_s
        for _ in range(self.threads):
            worker = threading.Thread(target=self._loop, args=(deadline,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self):
        """Stops the clients; returns the records."""
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout_s + 5)
        return list(self.records)

    def _loop(self, deadline):
        conn = None
        next_at = time.monotonic()
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.time()
            record, conn = self._one(conn, started)
            with self._lock:
                self.records.append(record)
            next_at += self.pause
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def _one(self, conn, started):
        """One request; (record, connection to reuse or None)."""
        # A keep-alive connection the server closed while idle (nginx closes
        # idle client connections when its old workers leave on a reload)
        # fails before the request reaches anyone. Like common HTTP clients
        # (Go's net/http, urllib3), send once more on a fresh connection when
        # a *reused* connection fails before any byte of the answer; counted
        # in the record (`stale`) so the report can say how often it happened.
        stale = 0
        for attempt in (0, 1):
            reused = conn is not None
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=self.timeout_s)
            try:
                conn.request("POST", self.request.path, self.request.body,
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except (BrokenPipeError, ConnectionResetError,
                    http.client.RemoteDisconnected) as err:
                conn.close()
                conn = None
                if reused and attempt == 0:
                    stale = 1
                    continue
                return Record(started, None, None, None, f"{type(err).__name__}: {err}",
                              stale), None
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                return Record(started, None, None, None, f"{type(err).__name__}: {err}",
                              stale), None
            record = Record(started, response.status, response.getheader(nginx.TRACK_HEADER),
                            response.getheader(nginx.UPSTREAM_HEADER), None, stale)
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
            return record, conn
        raise AssertionError("unreachable")


def failed(records):
    """The records of requests the client saw fail (no answer, or a 5xx)."""
    return [r for r in records if r[1] is None or r[1] >= 500]


def split(records, start, end, ports):
    """Observed shares in [start, end): by the split's choice and by who answered.

    `ports` maps "127.0.0.1:PORT" -> track name; a retried request's answer
    comes from the last address nginx lists.
    """
    window = [r for r in records if start <= r[0] < end and r[1] is not None]
    assigned = {}
    served = {}
    retried = 0
    for _, _, track, upstream, _, _ in window:
        assigned[track] = assigned.get(track, 0) + 1
        addresses = [a.strip() for a in (upstream or "").split(",") if a.strip()]
        retried += len(addresses) > 1
        who = ports.get(addresses[-1], "?") if addresses else "?"
        served[who] = served.get(who, 0) + 1
    total = len(window)

    def share(counts, track):
        return round(100.0 * counts.get(track, 0) / total, 1) if total else 0.0

    return {"requests": total, "canary_assigned_pct": share(assigned, "canary"),
            "canary_served_pct": share(served, "canary"), "retried": retried}
