"""A small bounded load generator: steady OIP infer traffic through the front door.

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
import threading
import time

from tools.deploy import nginx

# One "0" of the digits data set (8x8, values 0..16).
IMAGE = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
         0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
         0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]
BODY = json.dumps({"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32",
                               "data": IMAGE}]}).encode()
PATH = "/v2/models/digits/infer"
Record = collections.namedtuple("Record", "time status track upstream error stale")


class LoadGenerator:
    """`threads` clients at `rate` requests/s in total against 127.0.0.1:port."""

    def __init__(self, port, rate=60.0, threads=4, max_s=600.0, timeout_s=10.0):
        self.port = port
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
                conn.request("POST", PATH, BODY, {"Content-Type": "application/json"})
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
