"""The checked-in contract is what the service serves: a change to the API shows as a
diff of services/embeddings/openapi.json and results.schema.json
(`bazel run //services/embeddings:contract.update`)."""

import pathlib

import pytest

from serving.testing import HandlerClient
from services.embeddings.handler import EmbeddingsHandler

FOLDER = pathlib.Path("services/embeddings")


@pytest.mark.parametrize("route, name", [("/openapi.json", "openapi.json"),
                                         ("/v1/results.schema.json", "results.schema.json")])
def test_the_checked_in_contract_is_the_served_one(route, name):
    with HandlerClient(EmbeddingsHandler) as client:
        served = client.get(route).body.decode()
    assert served == (FOLDER / name).read_text(encoding="utf-8"), (
        f"services/embeddings/{name} is stale: run `bazel run "
        "//services/embeddings:contract.update` and review the diff")
