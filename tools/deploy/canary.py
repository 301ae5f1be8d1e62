"""`run-canary`: step the canary through weights, gate each step, roll back on failure."""

import time

from tools.deploy import gate
from tools.deploy.errors import DeployError, GateFailed, InputError


def parse_steps(text):
    """[10, 25, 50] from "10,25,50": whole numbers in 1..100, increasing."""
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise InputError(f"--steps {text!r}: give comma-separated weights, e.g. 10,25,50") \
            from err
    if not steps or any(not 1 <= s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise InputError(f"--steps {text!r}: weights must be increasing whole numbers "
                         "from 1 to 100")
    return steps


def _read(target, counters):
    """One reading of every instance of both tracks, added to their Increases."""
    for track, readings in target.read_metrics().items():
        counters[track].update(readings)


def _watch(target, counters, interval_s, bounds, sleep, poll_s=1.0):
    """The verdict on one interval; an abort is taken as soon as it is certain.

    The metrics are read every `poll_s` while the interval runs, so a canary
    that is already failing is rolled back within about a second instead of
    at the end of the step; promote and hold wait for the whole interval.
    """
    end = time.monotonic() + interval_s
    while True:
        sleep(max(0.0, min(poll_s, end - time.monotonic())))
        _read(target, counters)
        verdict = gate.judge(counters["canary"].total(), counters["stable"].total(), bounds)
        if verdict.decision == gate.ABORT or time.monotonic() >= end:
            return verdict


def run(target, image, steps, interval_s, bounds, auto=False, max_holds=2, archive=None,
        emit=print, sleep=time.sleep):
    """Runs the steps; returns the report. Raises GateFailed after rolling back."""
    report = {"image": image.reference, "digest": image.digest, "steps": [],
              "interval_s": interval_s, "result": None}
    first = True
    for weight in steps:
        try:
            target.canary(image if first else None, weight, archive)
        except DeployError as err:
            if not first:
                raise _abort(target, report, [f"could not set weight {weight}: {err}"],
                             emit) from err
            raise
        if first:
            report["canary_traffic_at"] = time.time()
            report["details"] = target.details()
            first = False
        step = {"weight": weight, "started": time.time(), "holds": 0}
        try:
            counters = {"stable": gate.Increase(), "canary": gate.Increase()}
            _read(target, counters)
            verdict = _watch(target, counters, interval_s, bounds, sleep)
            while verdict.decision == gate.HOLD and step["holds"] < max_holds:
                step["holds"] += 1
                emit_step(emit, dict(step, decision="hold", reasons=verdict.reasons,
                                     figures=verdict.figures))
                verdict = _watch(target, counters, interval_s, bounds, sleep)
            step["instances"] = {track: c.instances for track, c in counters.items()}
        except DeployError as err:
            verdict = gate.Verdict(gate.ABORT, (f"metrics unreadable: {err}",), {})
        step.update(ended=time.time(), decision=verdict.decision,
                    reasons=list(verdict.reasons), figures=verdict.figures)
        report["steps"].append(step)
        emit_step(emit, step)
        if verdict.decision != gate.PROMOTE:
            reasons = list(verdict.reasons)
            if verdict.decision == gate.HOLD:
                reasons.append(f"still too little traffic after {max_holds} extra interval(s)")
            raise _abort(target, report, reasons, emit)
    if auto:
        target.promote()
        report["result"] = "promoted"
        report["promoted_at"] = time.time()
    else:
        report["result"] = "passed"
    return report


def emit_step(emit, step):
    """One JSON-able line per step for the log."""
    emit({"step": step["weight"], "decision": step.get("decision"),
          "reasons": list(step.get("reasons", ())), "figures": step.get("figures", {})})


def _abort(target, report, reasons, emit):
    decided = time.time()
    traffic_back = target.abort_canary("; ".join(reasons))
    report.update(result="rolled back", reasons=reasons, decided_at=decided,
                  traffic_back_at=traffic_back, rolled_back_at=time.time())
    emit({"rollback": reasons})
    failed = GateFailed("canary rolled back: " + "; ".join(reasons))
    failed.report = report
    return failed
