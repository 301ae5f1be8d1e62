"""The safetensors reader: round trips, and names what is wrong with a broken file."""

import json
import struct

import numpy as np
import pytest

from models.minilm import safetensors


def _raw(header, data=b""):
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_tensors_round_trip_with_their_dtypes_and_shapes():
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
               "b": np.array([[0, 1, 2]], dtype=np.int64),
               "c": np.array([1.5, -2], dtype=np.float16)}
    parsed, metadata = safetensors.parse(safetensors.encode(tensors, {"format": "pt"}))
    assert metadata == {"format": "pt"}
    for name, value in tensors.items():
        assert parsed[name].dtype == value.dtype
        np.testing.assert_array_equal(parsed[name], value)


@pytest.mark.parametrize("data, message", [
    (b"\x01\x02", "too short"),
    (struct.pack("<Q", 10 ** 6) + b"{}", "does not fit"),
    (_raw([1, 2]), "must be a JSON object"),
    (struct.pack("<Q", 3) + b"{x}", "not UTF-8 JSON"),
    (_raw({"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
     "dtype 'Q4' is not supported"),
    (_raw({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)),
     "4 bytes do not hold a F32 array of shape [2]"),
    (_raw({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4)),
     "lie outside the 4-byte data section"),
    (_raw({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
           "v": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, bytes(8)), "overlap"),
])
def test_a_broken_file_is_refused_naming_the_problem(data, message):
    with pytest.raises(safetensors.SafetensorsError, match=message.replace("[", r"\[")
                       .replace("]", r"\]")):
        safetensors.parse(data, source="broken.safetensors")
