"""The binary tensor data extension's decoding and encoding, and the infer parser
fed with it (no server): byte counts, endianness, every datatype, and the
errors a client gets for a body that does not add up.
"""

import struct

import pytest

from serving import binary_data, protocol
from serving.errors import BadRequestError
from serving.handler import InputSpec

SPEC = InputSpec(model_name="digits", input_name="pixels", n_inputs=64, image_shape=(8, 8),
                 max_level=16, labels=tuple("0123456789"), item="image", value="pixel")
LEVELS = [i % 17 for i in range(64)]
CODES = {"UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b",
         "INT16": "h", "INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"}


def _request(datatype, raw, shape=(1, 64), **tensor):
    doc = {"inputs": [{"name": "pixels", "shape": list(shape), "datatype": datatype,
                       "parameters": {"binary_data_size": len(raw)}, **tensor}]}
    return protocol.parse_infer(doc, SPEC, memoryview(raw))


@pytest.mark.parametrize("datatype", sorted(CODES))
def test_every_datatype_decodes_little_endian_to_the_same_pixels(datatype):
    raw = struct.pack(f"<64{CODES[datatype]}", *LEVELS)
    assert _request(datatype, raw).x == [[float(v) for v in LEVELS]]


def test_split_takes_the_json_length_from_the_header():
    body = b'{"a": 1}' + b"\x00\x01"
    json_part, rest = binary_data.split(body, "8")
    assert json_part == b'{"a": 1}' and bytes(rest) == b"\x00\x01"
    for bad, words in (("x", "not a byte count"), ("-1", "not a byte count"),
                       ("11", "has only 10 bytes")):
        with pytest.raises(BadRequestError, match=words):
            binary_data.split(body, bad)


@pytest.mark.parametrize("raw,tensor,words", [
    (struct.pack("<63f", *LEVELS[:63]), {}, "need 64 x 4 = 256 bytes"),
    (struct.pack("<64f", *LEVELS), {"data": LEVELS}, "both 'data' and"),
    (struct.pack("<64f", *([float("nan")] + LEVELS[1:])), {}, "pixel 0 is nan"),
    (struct.pack("<64f", *(LEVELS[:9] + [float("inf")] + LEVELS[10:])), {}, "pixel 9 is inf"),
    (struct.pack("<64f", *(LEVELS[:3] + [float("nan")] + LEVELS[4:])), {}, "pixel 3 is nan"),
])
def test_binary_inputs_that_do_not_add_up_are_refused_by_name(raw, tensor, words):
    with pytest.raises(BadRequestError, match=words.replace("(", r"\(")):
        _request("FP32", raw, **tensor)


def test_size_must_match_the_bytes_after_the_header_and_need_the_header():
    raw = struct.pack("<64f", *LEVELS)
    doc = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32",
                       "parameters": {"binary_data_size": 256}}]}
    with pytest.raises(BadRequestError, match="256 but 260 bytes follow"):
        protocol.parse_infer(doc, SPEC, memoryview(raw + b"\x00" * 4))
    with pytest.raises(BadRequestError, match="Inference-Header-Content-Length header"):
        protocol.parse_infer(doc, SPEC, None)
    doc["inputs"][0]["parameters"]["binary_data_size"] = True
    with pytest.raises(BadRequestError, match="must be a byte count"):
        protocol.parse_infer(doc, SPEC, memoryview(raw))
    json_doc = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32",
                            "data": LEVELS}]}
    with pytest.raises(BadRequestError, match="no input says parameters.binary_data_size"):
        protocol.parse_infer(json_doc, SPEC, memoryview(raw))


def test_outputs_in_binary_when_asked_per_output_or_for_the_request():
    tensor = {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": LEVELS}
    proba = [[0.5, 0.25] + [0.03125] * 8]
    every = protocol.parse_infer({"inputs": [tensor], "parameters": {"binary_data_output": True}},
                                 SPEC)
    doc, raw = protocol.infer_body(SPEC, "v", every, proba)
    assert [o["parameters"]["binary_data_size"] for o in doc["outputs"]] == [40, 5]
    assert raw == struct.pack("<10f", *proba[0]) + struct.pack("<I", 1) + b"0"
    one = protocol.parse_infer({"inputs": [tensor], "parameters": {"binary_data_output": True},
                                "outputs": [{"name": "label", "parameters": {"binary_data": False}},
                                            {"name": "label"}]}, SPEC)
    assert one.outputs == (("label", True),)
    outputs = [{"name": "label"},
               {"name": "probabilities", "parameters": {"binary_data": True}}]
    mixed = protocol.parse_infer({"inputs": [tensor], "outputs": outputs}, SPEC)
    doc, raw = protocol.infer_body(SPEC, "v", mixed, proba)
    assert doc["outputs"][0]["data"] == ["0"] and "data" not in doc["outputs"][1]
    assert raw == struct.pack("<10f", *proba[0])
    for bad in ({"parameters": {"binary_data_output": "yes"}},
                {"outputs": [{"name": "label", "parameters": {"binary_data": 1}}]}):
        with pytest.raises(BadRequestError, match="must be true or false"):
            protocol.parse_infer({"inputs": [tensor], **bad}, SPEC)
