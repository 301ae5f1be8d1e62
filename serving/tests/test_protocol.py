"""The OIP infer parser's quick path for the common request agrees with its full checks."""

import uuid

import pytest

from serving import handler, protocol
from serving.errors import BadRequestError

SPEC = handler.InputSpec(input_name="x", n_inputs=4, max_level=10, labels=("low", "high"),
                         image_shape=(2, 2), model_name="toy")


def _tensor(**fields):
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [0, 1.5, 2, 10]}
    tensor.update(fields)
    return {key: value for key, value in tensor.items() if value is not None}


BODIES = {
    "plain FP32": {"inputs": [_tensor()]},
    "with id": {"id": "r1", "inputs": [_tensor()]},
    "empty id": {"id": "", "inputs": [_tensor()]},
    "two rows": {"inputs": [_tensor(shape=[2, 4], data=[0, 1, 2, 3, 4, 5, 6, 7])]},
    "INT32": {"inputs": [_tensor(datatype="INT32", data=[0, 1, 2, 3])]},
    "INT32 with integral floats": {"inputs": [_tensor(datatype="INT32", data=[0, 1.0, 2, 3])]},
    "negative zero": {"inputs": [_tensor(data=[-0.0, 1, 2, 3])]},
    "nested data": {"inputs": [_tensor(data=[[0, 1, 2, 3]])]},
    "image shape": {"inputs": [_tensor(shape=[1, 2, 2])]},
    "outputs asked": {"inputs": [_tensor()], "outputs": [{"name": "label"}]},
    "parameters": {"inputs": [_tensor()], "parameters": {"binary_data_output": False}},
    "tensor parameters": {"inputs": [_tensor(parameters={})]},
    # refused, by the full checks' messages
    "bool value": {"inputs": [_tensor(data=[True, 1, 2, 3])]},
    "string value": {"inputs": [_tensor(data=["1", 1, 2, 3])]},
    "out of range": {"inputs": [_tensor(data=[0, 1, 2, 11])]},
    "INT32 with a fraction": {"inputs": [_tensor(datatype="INT32", data=[0, 1.5, 2, 3])]},
    "float shape": {"inputs": [_tensor(shape=[1, 4.0])]},
    "bool shape": {"inputs": [_tensor(shape=[True, 4])]},
    "zero rows": {"inputs": [_tensor(shape=[0, 4], data=[])]},
    "short data": {"inputs": [_tensor(data=[0, 1, 2])]},
    "wrong name": {"inputs": [_tensor(name="y")]},
    "list datatype": {"inputs": [_tensor(datatype=["FP32"])]},
    "BOOL datatype": {"inputs": [_tensor(datatype="BOOL")]},
    "null id": {"id": None, "inputs": [_tensor()]},
    "number id": {"id": 7, "inputs": [_tensor()]},
    "two inputs": {"inputs": [_tensor(), _tensor()]},
    "unknown field": {"inputs": [_tensor()], "extra": 1},
    "missing data": {"inputs": [_tensor(data=None)]},
}


def _outcome(doc):
    try:
        request = protocol.parse_infer(doc, SPEC)
    except BadRequestError as err:
        return "error", str(err)
    request_id = request.request_id if "id" in doc else "generated"
    return request.x, request_id, request.outputs


@pytest.mark.parametrize("name", BODIES)
def test_quick_path_gives_what_the_full_checks_give(name, monkeypatch):
    quick = _outcome(BODIES[name])
    monkeypatch.setattr(protocol, "_plain_infer", lambda doc, spec: None)
    assert _outcome(BODIES[name]) == quick


def test_rows_are_canonical_floats():
    x = protocol.parse_infer({"inputs": [_tensor(data=[-0.0, 1, 2, 3])]}, SPEC).x
    assert x == [[0.0, 1.0, 2.0, 3.0]]
    assert all(type(v) is float for v in x[0])  # pylint: disable=unidiomatic-typecheck
    assert str(x[0][0]) == "0.0"


def test_generated_request_ids_are_uuid4_hex():
    ids = {protocol.parse_infer({"inputs": [_tensor()]}, SPEC).request_id for _ in range(100)}
    assert len(ids) == 100
    for request_id in ids:
        parsed = uuid.UUID(hex=request_id)
        assert parsed.hex == request_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
