"""The metric gate, on the exposition text of the service's own Metrics class."""

import pytest

from serving.metrics import Metrics
from tools.deploy import gate

INFER = "/v2/models/{model_name}/infer"
BOUNDS = gate.Bounds(min_requests=20, max_error_ratio=0.01, max_error_ratio_increase=0.005,
                     max_p99_s=0.5, max_p99_ratio=2.0)


def served(ok=0, errors=0, seconds=0.003, route=INFER, client_errors=0):
    """A Snapshot of a fresh service that answered these requests."""
    metrics = Metrics()
    for _ in range(ok):
        metrics.observe_request(route, "POST", 200, seconds)
    for _ in range(errors):
        metrics.observe_request(route, "POST", 500, seconds)
    for _ in range(client_errors):
        metrics.observe_request(route, "POST", 400, seconds)
    for _ in range(50):  # probes and scrapes must not count
        metrics.observe_request("/v2/health/ready", "GET", 200, 2.0)
        metrics.observe_request("metrics", "GET", 500, 2.0)
    return gate.parse(metrics.render().decode())


def test_parse_counts_prediction_routes_by_status():
    snap = served(ok=30, errors=3, client_errors=4)
    assert snap.total == 37
    assert snap.errors == 3
    assert snap.error_ratio() == pytest.approx(3 / 37)


def test_parse_counts_v1_predict_too():
    assert served(ok=5, route="predict").total == 5


def test_p99_comes_from_the_latency_buckets():
    assert 0.002 < served(ok=100, seconds=0.003).quantile(0.99) <= 0.005
    assert 0.25 < served(ok=100, seconds=0.3).quantile(0.99) <= 0.5


def test_difference_of_snapshots_is_what_the_step_served():
    metrics = Metrics()
    for _ in range(40):
        metrics.observe_request(INFER, "POST", 500, 0.003)
    before = gate.parse(metrics.render().decode())
    for _ in range(25):
        metrics.observe_request(INFER, "POST", 200, 0.003)
    step = gate.parse(metrics.render().decode()) - before
    assert (step.total, step.errors) == (25, 0)


def test_quiet_canary_is_held_not_judged():
    verdict = gate.judge(served(ok=5, errors=5), served(ok=500), BOUNDS)
    assert verdict.decision == gate.HOLD
    assert "--min-requests 20" in verdict.reasons[0]


def test_erroring_canary_is_aborted():
    verdict = gate.judge(served(ok=20, errors=5), served(ok=500), BOUNDS)
    assert verdict.decision == gate.ABORT
    assert any("error ratio" in r for r in verdict.reasons)


def test_canary_worse_than_a_failing_stable_by_the_margin_is_aborted():
    bounds = gate.Bounds(min_requests=20, max_error_ratio=0.5, max_error_ratio_increase=0.05)
    stable = served(ok=90, errors=10)
    assert gate.judge(served(ok=89, errors=11), stable, bounds).decision == gate.PROMOTE
    assert gate.judge(served(ok=80, errors=20), stable, bounds).decision == gate.ABORT


def test_client_errors_do_not_fail_a_canary():
    assert gate.judge(served(ok=30, client_errors=10), served(ok=500),
                      BOUNDS).decision == gate.PROMOTE


def test_slow_canary_is_aborted_against_stable():
    verdict = gate.judge(served(ok=50, seconds=0.08), served(ok=500, seconds=0.003), BOUNDS)
    assert verdict.decision == gate.ABORT
    assert any("stable's" in r and "p99" in r for r in verdict.reasons)


def test_a_few_tens_of_milliseconds_of_noise_do_not_fail_a_canary():
    assert gate.judge(served(ok=30, seconds=0.045), served(ok=500, seconds=0.002),
                      BOUNDS).decision == gate.PROMOTE


def test_canary_over_the_absolute_p99_bound_is_aborted_without_stable_traffic():
    verdict = gate.judge(served(ok=50, seconds=0.8), served(), BOUNDS)
    assert verdict.decision == gate.ABORT
    assert any("above the bound 500 ms" in r for r in verdict.reasons)


def test_healthy_canary_is_promoted():
    verdict = gate.judge(served(ok=50), served(ok=500), BOUNDS)
    assert verdict.decision == gate.PROMOTE
    assert verdict.figures["canary"]["requests"] == 50


def test_at_full_weight_only_absolute_bounds_apply():
    verdict = gate.judge(served(ok=50, seconds=0.02), served(ok=2), BOUNDS)
    assert verdict.decision == gate.PROMOTE
    assert "absolute bounds only" in verdict.reasons[0]


def test_a_track_served_the_sum_of_each_pods_increase():
    track = gate.Increase()
    track.update({"pod-a": served(ok=5000), "pod-b": served(ok=10, errors=9)})
    track.update({"pod-a": served(ok=5030), "pod-b": served(ok=40, errors=9)})
    step = track.total()
    assert (step.total, step.errors) == (60, 0)


def test_a_restarted_pod_keeps_what_it_served_and_counts_again_from_zero():
    track = gate.Increase()
    track.update({"pod-a": served(ok=100)})
    track.update({"pod-a": served(ok=130, errors=2)})
    track.update({"pod-a": served(ok=5)})  # restarted: counters from zero
    step = track.total()
    assert (step.total, step.errors) == (37, 2)
    assert min(step.buckets.values()) >= 0


def test_a_pod_first_seen_mid_step_counts_from_then_and_a_gone_one_keeps_its_share():
    track = gate.Increase()
    track.update({"pod-a": served(ok=100)})
    track.update({"pod-a": served(ok=110), "pod-new": served(ok=50)})
    track.update({"pod-new": served(ok=75)})  # pod-a deleted by a rollout
    assert track.total().total == 10 + 25
    assert track.instances == ["pod-a", "pod-new"]
