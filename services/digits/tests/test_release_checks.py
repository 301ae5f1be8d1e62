"""The digits image's release data (model_image in services/digits/BUILD: served name,
sample requests, task endpoint and schema, contract) passes the release tool's generic
contract and operating-point checks against the real service, and a broken sample
request fails them: what `bazel run //services/digits:image.release -- validate`
checks on a container, checked here on the server process."""

import dataclasses
import json
import types

import pytest

from inference.model import Model
from models.digits import paths
from tools.release import gates, imagespec, labels

SPEC = "services/digits/image.spec"


@pytest.fixture(name="spec", scope="module")
def fixture_spec():
    """The digits image's spec, as its release target reads it."""
    return imagespec.load(SPEC)


@pytest.fixture(name="container", scope="module")
def fixture_container(server, spec):
    """The running server, dressed as the validated container (labels of its model and
    contract; `docker stats` answered)."""
    with open(imagespec.local(spec, spec.contract, "contract"), encoding="utf-8") as text:
        api_version = json.load(text)["info"]["version"]
    pushed = types.SimpleNamespace(config_digest="sha256:x", labels={
        labels.MODEL_VERSION: Model.load(paths.model_path()).version,
        labels.API_VERSION: api_version})
    daemon = types.SimpleNamespace(
        docker=lambda *args: types.SimpleNamespace(stdout="30.0MiB / 1GiB"))
    return types.SimpleNamespace(port=server.port, pushed=pushed, image_id="sha256:x",
                                 daemon=daemon, name="release-validate")


def test_the_contract_checks_pass_with_the_declared_samples(container, spec):
    checks = gates.contract_checks(container, spec, imagespec.requests(spec))
    assert [c for c in checks if not c.ok] == []
    names = [c.name for c in checks]
    assert "POST /v2/models/digits/infer answers a batch of 2" in names
    assert "POST /v1/predict matches results.schema.json" in names
    assert "served /openapi.json equals services/digits/openapi.json" in names


def test_the_operating_point_load_uses_the_declared_samples(container, spec):
    bounds = {"latency_p95_ms": 1000, "memory_mib": 100, "tolerance": 0, "requests": 40,
              "warmup_requests": 5}
    checks = gates.operating_point_checks(container, bounds, spec.served_name,
                                          imagespec.requests(spec)["operating_point"])
    assert all(c.ok for c in checks), checks
    assert set(checks[0].figures) == {"latency_p95_ms", "latency_p50_ms"}


def test_a_sample_request_the_service_refuses_fails_the_contract(container, spec):
    samples = imagespec.requests(spec)
    broken = json.loads(json.dumps(samples))
    broken["infer"]["inputs"][0]["name"] = "not-pixels"
    broken["task"] = {"instances": "not images"}
    failed = [c.name for c in gates.contract_checks(container, spec, broken) if not c.ok]
    assert "POST /v2/models/digits/infer answers a batch of 2" in failed
    assert "POST /v1/predict matches results.schema.json" in failed
    assert any(name.startswith("GET /v2/models/digits metadata") for name in failed)


def test_a_served_name_the_service_does_not_serve_fails_the_contract(container, spec):
    other = dataclasses.replace(spec, served_name="other")
    failed = [c.name for c in gates.contract_checks(container, other,
                                                    imagespec.requests(spec)) if not c.ok]
    assert "POST /v2/models/other/infer answers a batch of 2" in failed
