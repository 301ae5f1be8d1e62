"""The service's routes as its contract lists them, with sample values filled in.

Tests of the front doors (Ingress, local nginx) check every public route of
the example model's service (its contract, services/digits/openapi.json)
against them, so a route added to the serving runtime is checked too, and
probe /metrics the ways a client could spell it.
"""

import json
import os

CONTRACT = os.path.join("services", "digits", "openapi.json")
METRICS = "/metrics"
# Spellings of /metrics a client may try; nginx normalises each to /metrics
# (or to a path the service does not serve) before it picks a location.
METRICS_SPELLINGS = ["/metrics", "/metrics/", "//metrics", "/%6Detrics", "/metrics?x=1",
                     "/v2/../metrics", "/v2/%2E%2E/metrics", "/v1/./../metrics",
                     "/./metrics"]


def api_paths():
    """Every path of the contract but /metrics, e.g. /v2/models/iris/versions/1/infer
    (any model name: the front doors route every model's paths)."""
    with open(CONTRACT, encoding="utf-8") as text:
        paths = json.load(text)["paths"]
    assert METRICS in paths, "the contract no longer lists /metrics: update this test"
    return sorted(path.replace("{model_name}", "iris").replace("{model_version}", "1")
                  for path in paths if path != METRICS)
