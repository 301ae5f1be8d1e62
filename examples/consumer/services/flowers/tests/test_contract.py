"""The checked-in contract is what the service serves: a change to the API shows as a
diff of services/flowers/openapi.json (`bazel run //services/flowers:contract.update`)."""

import pathlib

from serving.testing import HandlerClient
from services.flowers.handler import FlowersHandler

CHECKED_IN = pathlib.Path("services/flowers/openapi.json")


def test_the_checked_in_contract_is_the_served_one():
    with HandlerClient(FlowersHandler) as client:
        served = client.get("/openapi.json").body.decode()
    assert served == CHECKED_IN.read_text(encoding="utf-8"), (
        "services/flowers/openapi.json is stale: run `bazel run "
        "//services/flowers:contract.update` and review the diff")
