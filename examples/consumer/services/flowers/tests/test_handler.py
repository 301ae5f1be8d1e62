"""The flowers handler behind modelship's real service (serving.testing.HandlerClient).

Runs under Bazel (`bazel test //services/flowers/tests:test_handler`) and in
the image's test stage alike: the model is found beside models/flowers/paths.py.
"""

import pytest

from models.flowers import paths
from serving.testing import HandlerClient
from services.flowers.handler import FlowersHandler

SETOSA = [50, 34, 15, 3]
VIRGINICA = [67, 30, 56, 21]


@pytest.fixture(name="client")
def fixture_client():
    """The flowers handler behind the real service, no result cache."""
    with HandlerClient(FlowersHandler, model_path=paths.model_path(),
                       env={"MODELSHIP_CACHE": "off"}) as client:
        yield client


def test_ready_and_served_under_its_own_name(client):
    assert client.get("/v2/health/ready").status == 200
    metadata = client.get("/v2/models/flowers").json()
    assert metadata["name"] == "flowers"
    assert metadata["inputs"][0]["name"] == "measurements"


def test_oip_infer_gives_the_species(client):
    response = client.infer([SETOSA, VIRGINICA])
    outputs = {output["name"]: output for output in response["outputs"]}
    assert outputs["label"]["data"] == ["setosa", "virginica"]
    probabilities = outputs["probabilities"]["data"]
    assert len(probabilities) == 6
    assert abs(sum(probabilities[:3]) - 1) < 1e-5


def test_task_endpoint_classifies(client):
    response = client.post("/v1/classify", {"rows": [SETOSA, VIRGINICA]})
    assert response.status == 200, response.json()
    assert response.json() == {"species": ["setosa", "virginica"]}


def test_a_row_of_the_wrong_length_is_a_400_that_says_so(client):
    response = client.post("/v1/classify", {"rows": [[1, 2, 3]]})
    assert response.status == 400
    assert "4 measurements" in response.json()["error"]


def test_a_measurement_out_of_range_is_refused(client):
    response = client.post("/v1/classify", {"rows": [[500, 34, 15, 3]]})
    assert response.status == 400


def test_the_contract_names_the_task(client):
    document = client.openapi()
    assert "/v1/classify" in document["paths"]
