"""Canary deploys with real containers and real traffic, as the issue's "done when" asks.

The production image is built once (private buildah storage); the drill
(tools/deploy/drill.py) derives a second good release and two bad ones from
it, puts the production image on the stable track of the local target
(private dockerd, private nginx) and, with a load generator sending steady
OIP infer traffic through nginx all along, runs through the deploy CLI:
  1. a good canary goes 10 -> 25 -> 50 -> 100 % and is promoted;
  2. an erroring canary and a slow one are each caught at the first step
     and rolled back automatically;
  3. a manual `rollback --release-history` after the promotion restores the
     previous digest.
Each test checks one scenario's figures: the exit status and resulting
tracks, zero failed client requests, the time from fault to rollback, and
the observed split against the weight set. The figures are also written to
the test's undeclared outputs (drill.json) for docs/benchmarks.md.
"""

import json
import os

import pytest

from tests.image import support
from tools.deploy import drill as drill_lib

INTERVAL_S = 4.0
# Binomial spread of the share at ~240 requests per step: sd <= 3.2 points.
SPLIT_TOLERANCE_POINTS = 10


@pytest.fixture(name="results", scope="module")
def fixture_results(tmp_path_factory):
    """{scenario: figures} of one drill on a fresh production build."""
    out = str(tmp_path_factory.mktemp("dist"))
    storage = str(tmp_path_factory.mktemp("storage"))
    report = support.build_production(out, extra=("--storage", storage))
    archive = os.path.join(out, support.IMAGE + ".oci.tar")
    # The served name from the spec, not the archive's label: what the
    # drill is told must be what the image serves.
    drill = drill_lib.Drill(archive, str(tmp_path_factory.mktemp("drill")),
                            interval_s=INTERVAL_S, served_name=support.spec()["served_name"])
    try:
        ran = drill.run_all()
    finally:
        drill.close()
    assert drill.digests["production"] == report["digest"]
    outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    if outputs:
        with open(os.path.join(outputs, "drill.json"), "w", encoding="utf-8") as text:
            json.dump(ran, text, indent=1)
    print(drill_lib.markdown(ran))
    good, error, slow, manual = ran
    return {"good": good, "error": error, "slow": slow, "manual": manual,
            "digests": drill.digests}


def test_good_canary_steps_through_every_weight_and_is_promoted(results):
    good = results["good"]
    assert good["exit"] == 0, good
    assert good["result"] == "promoted"
    assert [s["weight"] for s in good["steps"]] == [10, 25, 50, 100]
    assert all(s["decision"] == "promote" for s in good["steps"]), good["steps"]
    assert good["stable_after"] == results["digests"]["good"]


def test_good_canary_observed_split_follows_the_weight(results):
    for step in results["good"]["steps"]:
        assert step["requests"] >= 100, step
        assert abs(step["canary_served_pct"] - step["weight"]) <= SPLIT_TOLERANCE_POINTS, step


@pytest.mark.parametrize("kind", ["error", "slow"])
def test_bad_canary_is_rolled_back_at_the_first_step(results, kind):
    bad = results[kind]
    assert bad["exit"] == 1, bad
    assert bad["result"] == "rolled back"
    assert [(s["weight"], s["decision"]) for s in bad["steps"]] == [(10, "abort")]
    assert bad["stable_after"] == results["digests"]["good"]
    assert bad["canary_after"] is None
    assert len(bad["containers_after"]) == 1, bad["containers_after"]  # the canary is gone
    # Caught within the step (the gate aborts as soon as it is sure), and no
    # request went to the canary once traffic was back on stable.
    assert bad["fault_to_rollback_s"] <= INTERVAL_S + 2, bad
    assert bad["last_canary_request_after_rollback_s"] <= 1.0, bad


def test_erroring_canary_errors_are_answered_by_stable(results):
    error = results["error"]
    assert error["nginx_retried_on_other_track"] > 0
    assert error["steps"][0]["canary_served_pct"] == 0.0


def test_manual_rollback_after_promotion_restores_the_previous_digest(results):
    manual = results["manual"]
    assert manual["exit"] == 0, manual
    assert manual["stable_before"] == results["digests"]["good"]
    assert manual["stable_after"] == results["digests"]["production"]
    assert manual["output"][-1]["source"] == "release history"


@pytest.mark.parametrize("scenario", ["good", "error", "slow", "manual"])
def test_no_client_request_failed(results, scenario):
    figures = results[scenario]
    assert figures["requests"] > 100
    assert figures["failed"] == 0, figures["failures"]
