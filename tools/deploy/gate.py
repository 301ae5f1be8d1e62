"""The metric gate: the service's own Prometheus metrics, canary against stable.

A track is several instances (pods on kubernetes), each with its own
counters. Every instance's /metrics is read at the start of a step and
again while it runs; what the track served in the step is the sum over its
instances of each one's increase (`Increase`, the way Prometheus'
`increase()` treats a counter reset or a new series). Subtracting readings of
different instances, as one Service address answering from a different pod
each time would give, means nothing. Only prediction routes count (OIP infer
and /v1/predict): health probes and metric scrapes say nothing about a
release.
"""

import dataclasses
import math
import re
import urllib.error
import urllib.request

from tools.deploy.errors import DeployError

REQUESTS = "modelship_http_requests_total"
LATENCY_BUCKET = "modelship_http_request_duration_seconds_bucket"
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

PROMOTE, HOLD, ABORT = "promote", "hold", "abort"


def is_prediction(route):
    """True for the routes whose health decides a release."""
    return route == "predict" or route.endswith("/infer")


@dataclasses.dataclass
class Snapshot:
    """Prediction traffic of one track: counts by status, latency buckets {le: count}."""

    by_status: dict
    buckets: dict

    @property
    def total(self):
        """Requests answered."""
        return sum(self.by_status.values())

    @property
    def errors(self):
        """Requests answered with a 5xx (4xx is the client's fault, not the release's)."""
        return sum(n for status, n in self.by_status.items() if status.startswith("5"))

    def __sub__(self, earlier):
        return Snapshot(
            {k: v - earlier.by_status.get(k, 0) for k, v in self.by_status.items()},
            {k: v - earlier.buckets.get(k, 0) for k, v in self.buckets.items()})

    def __add__(self, other):
        return Snapshot(
            {k: self.by_status.get(k, 0) + other.by_status.get(k, 0)
             for k in set(self.by_status) | set(other.by_status)},
            {k: self.buckets.get(k, 0) + other.buckets.get(k, 0)
             for k in set(self.buckets) | set(other.buckets)})

    def went_down_from(self, earlier):
        """True when a counter is lower than in `earlier`: the process restarted."""
        return any(self.by_status.get(k, 0) < v for k, v in earlier.by_status.items()) or \
            any(self.buckets.get(k, 0) < v for k, v in earlier.buckets.items())

    def error_ratio(self):
        """5xx / all (0 when nothing was served)."""
        return self.errors / self.total if self.total else 0.0

    def quantile(self, q):
        """The q-quantile latency in seconds, interpolated within its bucket."""
        bounds = sorted(self.buckets, key=float)
        total = self.buckets.get("+Inf", 0)
        if not total:
            return 0.0
        rank, lower, below = q * total, 0.0, 0
        for bound in bounds:
            count = self.buckets[bound]
            if count >= rank:
                upper = float(bound)
                if math.isinf(upper):
                    return lower  # beyond the last finite bucket: its bound is all we know
                inside = count - below
                return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = float(bound), count
        return lower

    def bucket_above(self, seconds):
        """The width of the bucket holding `seconds` (the p99's resolution)."""
        lower = 0.0
        for bound in sorted((float(b) for b in self.buckets), key=float):
            if seconds <= bound:
                return bound - lower if not math.isinf(bound) else seconds
            lower = bound
        return seconds


EMPTY = Snapshot({}, {})


def parse(text):
    """A Snapshot of the prediction routes from Prometheus exposition text."""
    by_status, buckets = {}, {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) not in (REQUESTS, LATENCY_BUCKET):
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        if not is_prediction(labels.get("route", "")):
            continue
        value = int(float(match.group(3)))  # counts: whole numbers in float notation
        if match.group(1) == REQUESTS:
            status = labels.get("status", "")
            by_status[status] = by_status.get(status, 0) + value
        else:
            le = labels.get("le", "+Inf")
            buckets[le] = buckets.get(le, 0) + value
    return Snapshot(by_status, buckets)


def scrape(url, timeout=5):
    """A Snapshot read from a /metrics URL; DeployError when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse(response.read().decode())
    except (urllib.error.URLError, OSError) as err:
        raise DeployError(f"cannot read metrics at {url}: {err}") from err


class Increase:
    """What one track served since its first reading, summed over its instances.

    `update()` takes one reading of every instance ({instance: Snapshot});
    `total()` is the sum of each instance's increase since it was first seen.
    An instance first seen mid-step (a new pod) counts from that reading on;
    one that restarted (a counter went down) keeps what it had served before
    and counts again from zero; one that disappeared keeps its last figures.
    """

    def __init__(self):
        self._first, self._last, self._carried = {}, {}, {}

    def update(self, readings):
        """Adds one reading of the track's instances."""
        for instance, snapshot in readings.items():
            if instance not in self._first:
                self._first[instance] = self._last[instance] = snapshot
                continue
            if snapshot.went_down_from(self._last[instance]):
                served = self._last[instance] - self._first[instance]
                self._carried[instance] = self._carried.get(instance, EMPTY) + served
                self._first[instance] = EMPTY
            self._last[instance] = snapshot

    def total(self):
        """The track's traffic since the first reading, as one Snapshot."""
        total = EMPTY
        for instance, first in self._first.items():
            total = total + self._carried.get(instance, EMPTY) + (self._last[instance] - first)
        return total

    @property
    def instances(self):
        """The instances read so far."""
        return sorted(self._first)


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What a canary must stay within (see README, "Metric gate")."""

    min_requests: int = 20
    max_error_ratio: float = 0.01
    max_error_ratio_increase: float = 0.005
    max_p99_s: float = 0.5
    max_p99_ratio: float = 2.0
    # A step's p99 rests on few requests (at 10 % of a quiet service, tens):
    # one scheduling hiccup on a busy node moves it by tens of milliseconds.
    p99_slack_s: float = 0.05


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The decision of one step, why, and the figures it was made on."""

    decision: str
    reasons: tuple
    figures: dict


def judge(canary, stable, bounds):
    """promote, hold or abort for one step's canary and stable Snapshots (deltas)."""
    figures = {
        "canary": {"requests": canary.total, "errors": canary.errors,
                   "error_ratio": round(canary.error_ratio(), 4),
                   "p99_s": round(canary.quantile(0.99), 4)},
        "stable": {"requests": stable.total, "errors": stable.errors,
                   "error_ratio": round(stable.error_ratio(), 4),
                   "p99_s": round(stable.quantile(0.99), 4)},
    }
    failures = []
    c_ratio, c_p99 = canary.error_ratio(), canary.quantile(0.99)
    if canary.total < bounds.min_requests:
        return Verdict(HOLD, (f"canary served {canary.total} prediction requests, fewer than "
                              f"--min-requests {bounds.min_requests}",), figures)
    if c_ratio > bounds.max_error_ratio:
        failures.append(f"canary error ratio {c_ratio:.3f} ({canary.errors}/{canary.total}) "
                        f"above the bound {bounds.max_error_ratio}")
    compare = stable.total >= bounds.min_requests
    if compare and c_ratio > stable.error_ratio() + bounds.max_error_ratio_increase:
        failures.append(f"canary error ratio {c_ratio:.3f} above stable's "
                        f"{stable.error_ratio():.3f} + {bounds.max_error_ratio_increase}")
    if c_p99 > bounds.max_p99_s:
        failures.append(f"canary p99 {c_p99 * 1000:.1f} ms above the bound "
                        f"{bounds.max_p99_s * 1000:.0f} ms")
    if compare:
        s_p99 = stable.quantile(0.99)
        slack = max(stable.bucket_above(s_p99), bounds.p99_slack_s)
        allowed = s_p99 * bounds.max_p99_ratio + slack
        if c_p99 > allowed:
            failures.append(f"canary p99 {c_p99 * 1000:.1f} ms above {bounds.max_p99_ratio} x "
                            f"stable's {s_p99 * 1000:.1f} ms + {slack * 1000:.0f} ms")
    if failures:
        return Verdict(ABORT, tuple(failures), figures)
    note = "" if compare else " (stable served too little to compare; absolute bounds only)"
    return Verdict(PROMOTE, ("canary within bounds" + note,), figures)
