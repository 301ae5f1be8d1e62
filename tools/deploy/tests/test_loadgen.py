"""The load generator's infer request: made from any model's own metadata, or a file.

A model here is a small HTTP server answering `GET /v2/models/<name>` with the
metadata it is given and recording the infer requests it receives, so the
request is checked where it lands, not only as built.
"""

import http.server
import json
import threading
import time

import pytest

from tools.deploy import loadgen

# A model that is not the example one: two inputs, other names, types, shapes.
TABULAR = {
    "name": "churn", "versions": ["3"], "platform": "sklearn",
    "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 12]},
               {"name": "segment", "datatype": "INT32", "shape": [-1]}],
    "outputs": [{"name": "score", "datatype": "FP32", "shape": [-1]}],
}


class Model(http.server.ThreadingHTTPServer):
    """Serves `metadata` as model `name`; keeps the bodies of infer requests."""

    daemon_threads = True

    def __init__(self, name, metadata):
        self.name = name
        self.metadata = metadata
        self.bodies = []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        """The port it listens on."""
        return self.server_address[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        """Model metadata, for the model's own name only."""
        if self.path == f"/v2/models/{self.server.name}":
            self._send(200, self.server.metadata)
        else:
            self._send(404, {"error": f"no model at {self.path}"})

    def do_POST(self):  # pylint: disable=invalid-name
        """Infer: recorded."""
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != f"/v2/models/{self.server.name}/infer":
            self._send(404, {"error": f"no model at {self.path}"})
            return
        self.server.bodies.append(json.loads(body))
        self._send(200, {"model_name": self.server.name, "outputs": []})

    def log_message(self, *args):  # pylint: disable=arguments-differ
        del args


@pytest.fixture(name="model")
def fixture_model():
    """The churn model, served on loopback."""
    server = Model("churn", TABULAR)
    yield server
    server.shutdown()
    server.server_close()


def test_request_has_one_tensor_per_input_of_its_type_and_shape():
    request = loadgen.request_from_metadata("churn", TABULAR)
    assert request.path == "/v2/models/churn/infer"
    assert json.loads(request.body) == {"inputs": [
        {"name": "features", "shape": [1, 12], "datatype": "FP64", "data": [0.0] * 12},
        {"name": "segment", "shape": [1], "datatype": "INT32", "data": [0]}]}


@pytest.mark.parametrize("datatype, shape, data", [
    ("BOOL", [2, -1], [False, False]),
    ("BYTES", [-1], ["0"]),
    ("UINT8", [1, 2, 2], [0, 0, 0, 0]),
    ("FP16", [3], [0.0, 0.0, 0.0]),
])
def test_every_datatype_gets_its_zero_and_variable_dimensions_are_one(datatype, shape, data):
    metadata = {"inputs": [{"name": "x", "datatype": datatype, "shape": shape}]}
    (tensor,) = json.loads(loadgen.request_from_metadata("m", metadata).body)["inputs"]
    assert tensor["data"] == data
    assert tensor["shape"] == [1 if d == -1 else d for d in shape]


def test_the_served_name_is_escaped_in_the_path():
    request = loadgen.request_from_metadata("a b/c", TABULAR)
    assert request.path == "/v2/models/a%20b%2Fc/infer"


@pytest.mark.parametrize("metadata, said", [
    ({"name": "m"}, "lists no inputs"),
    ({"inputs": []}, "lists no inputs"),
    ({"inputs": [{"name": "x", "datatype": "FP128", "shape": [1]}]}, "input 0"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-2]}]}, "input 0"),
    ({"inputs": [{"datatype": "FP32", "shape": [1]}]}, "input 0"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [4096, 4096]}]}, "elements"),
])
def test_unusable_metadata_asks_for_a_request_file(metadata, said):
    with pytest.raises(loadgen.RequestError, match=f"{said}.*--request FILE"):
        loadgen.request_from_metadata("m", metadata)


def test_model_request_reads_the_metadata_the_model_serves(model):
    request = loadgen.model_request(model.port, "churn")
    assert request == loadgen.request_from_metadata("churn", TABULAR)


def test_a_wrong_served_name_says_which_name_was_tried(model):
    with pytest.raises(loadgen.RequestError, match="answered 404: is the model served as "
                                                   "'iris'"):
        loadgen.model_request(model.port, "iris")


def test_the_load_generator_sends_the_derived_request(model):
    request = loadgen.model_request(model.port, "churn")
    load = loadgen.LoadGenerator(model.port, request, rate=100, threads=2, max_s=10).start()
    deadline = time.monotonic() + 10
    while len(model.bodies) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    records = load.stop()
    assert len(model.bodies) >= 5
    assert loadgen.failed(records) == []
    assert all(body == json.loads(request.body) for body in model.bodies)
    assert model.bodies[0]["inputs"][1]["name"] == "segment"


def test_a_request_file_replaces_the_metadata(tmp_path, model):
    body = {"inputs": [{"name": "features", "shape": [1, 12], "datatype": "FP64",
                        "data": list(range(12))}]}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    request = loadgen.model_request(model.port, "churn", str(path))
    assert request.path == "/v2/models/churn/infer"
    assert json.loads(request.body) == body


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"instances": [[1]]}'])
def test_a_request_file_that_is_no_infer_request_is_refused(tmp_path, text):
    path = tmp_path / "request.json"
    path.write_text(text)
    with pytest.raises(loadgen.RequestError, match=f"--request {path}"):
        loadgen.request_from_file("churn", str(path))
