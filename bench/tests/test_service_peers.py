"""The peer benchmark's parts, without timing anything or installing a peer.

What the figures rest on: the request every server gets, the label read back
from each server's answer shape, the no-op route (on the same stack, off the
contract), the MLServer settings (one process) and the report of a peer that
cannot be installed.
"""

import asyncio
import json
import os
import stat

import pytest

from serving import config as config_lib
from serving.app import Service
from serving.testing import HandlerClient
from services.digits.handler import DigitsHandler
from models.digits import paths
from bench import noop_server, service_peers

ENV = {"MODELSHIP_HANDLER": service_peers.HANDLER, "MODELSHIP_CACHE": "off"}


@pytest.fixture(name="check_rows", scope="module")
def fixture_check_rows():
    """A few data set images, spread over it."""
    rows = service_peers.images()
    return rows[::len(rows) // 8][:8]


def test_our_service_gives_the_models_labels_on_both_requests(check_rows):
    expected = service_peers.expected_labels(check_rows)
    assert len(set(expected)) > 1, "the check images should not all be one digit"
    with HandlerClient(DigitsHandler, model_path=paths.model_path(), env=ENV) as client:
        for row, label in zip(check_rows, expected):
            infer = client.post(service_peers.INFER_PATH,
                                json.loads(service_peers.oip_body(row)))
            task = client.post(service_peers.TASK_PATH, json.loads(service_peers.task_body(row)))
            assert infer.status == 200 and task.status == 200
            assert service_peers.label_of("infer", infer.json()) == label
            assert service_peers.label_of("task", task.json()) == label


def test_request_is_one_flat_fp32_image():
    doc = json.loads(service_peers.oip_body(list(range(64))))
    assert doc == {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32",
                               "data": list(range(64))}]}


def test_label_is_read_from_flat_and_nested_bytes_outputs():
    flat = {"outputs": [{"name": "probabilities", "data": [0.1]},
                        {"name": "label", "shape": [1], "data": ["7"]}]}
    nested = {"outputs": [{"name": "label", "shape": [1, 1], "data": [["7"]]}]}
    assert service_peers.label_of("infer", flat) == "7"
    assert service_peers.label_of("infer", nested) == "7"
    with pytest.raises(ValueError):
        service_peers.label_of("infer", {"outputs": [{"name": "probabilities", "data": []}]})


def _answer(service, method, path, body=b""):
    async def read_body(limit):
        del limit
        return body

    headers = {"content-type": "application/json", "content-length": str(len(body))}

    async def run():
        await service.start()
        try:
            return await service.handle(method, path, headers.get, read_body)
        finally:
            await service.stop(1)

    return asyncio.run(run())


def _config():
    return config_lib.Config.from_environ({**ENV, "MODELSHIP_MODEL_PATH": paths.model_path()})


def test_noop_route_answers_constant_json_without_the_model():
    response = _answer(noop_server.NoopService(_config()), "POST", noop_server.NOOP_PATH,
                       b"not even JSON")
    assert response.status == 200
    assert response.body == noop_server.NOOP_BODY == b'{"ok":true}'


def test_noop_route_is_not_in_the_product_or_its_contract():
    assert _answer(Service(_config()), "POST", noop_server.NOOP_PATH, b"{}").status == 404
    document = _answer(noop_server.NoopService(_config()), "GET", "/openapi.json")
    assert document.status == 200
    assert noop_server.NOOP_PATH.encode() not in document.body


def test_mlserver_runs_the_digits_runtime_in_one_process(tmp_path):
    service_peers.write_mlserver_repository(str(tmp_path), "digits.model", 1, 2, 3)
    settings = json.loads((tmp_path / "settings.json").read_text())
    model = json.loads((tmp_path / "digits" / "model-settings.json").read_text())
    assert settings["parallel_workers"] == 0 and settings["debug"] is False
    assert (settings["http_port"], settings["grpc_port"], settings["metrics_port"]) == (1, 2, 3)
    assert model["name"] == "digits"
    assert model["implementation"] == "bench.peer_mlserver.DigitsRuntime"
    assert os.path.isabs(model["parameters"]["uri"])


def test_a_peer_that_cannot_be_installed_is_reported_with_the_reason(tmp_path):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'ERROR: No matching distribution found for x' >&2\n"
                      "exit 1\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    venvs = tmp_path / "venvs"
    with pytest.raises(service_peers.PeerUnavailable, match="No matching distribution"):
        service_peers.peer_venv("mlserver", root=str(venvs), python=str(python))
    assert not venvs.exists() or not os.listdir(venvs), "a half-made venv was left behind"


def test_ratios_are_ours_over_each_other_server():
    rows = {"ours: OIP infer": {"rps": 800.0}, "ours: no-op JSON (same stack)": {"rps": 1000.0},
            "MLServer 1.7.1": {"rps": 100.0}}
    assert service_peers.ratio_lines(rows) == ["- infer / no-op: 0.80x req/s",
                                               "- ours (infer) / MLServer: 8.00x req/s"]
