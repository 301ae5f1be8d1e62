"""The artifact container: layout, round trip and byte determinism."""

import array
import hashlib
import json
import struct

import numpy as np
import pytest

from inference import artifact

HEADER = {"model": {"name": "toy"}, "labels": ["a", "b"], "metrics": {"x": 0.5}}


def _tensors():
    return {
        "b.scale": np.array([0.5, 2.0, -1.25], dtype=np.float32),
        "a.weight": np.array([[1, -2, 127], [-127, 0, 3]], dtype=np.int8),
        "c.count": np.array([7, -9], dtype=np.int32),
    }


def test_round_trip_preserves_header_and_tensor_bits():
    decoded = artifact.decode(artifact.encode(HEADER, _tensors()))
    assert {k: v for k, v in decoded.header.items() if k != "tensors"} == HEADER
    for name, tensor in _tensors().items():
        assert np.asarray(decoded.tensors[name]).dtype == tensor.dtype
        assert decoded.tensors[name].shape == tensor.shape
        assert decoded.tensors[name].tobytes() == tensor.tobytes()


def test_encoding_is_byte_identical_whatever_the_key_order():
    reordered_header = dict(reversed(list(HEADER.items())))
    reordered_tensors = dict(reversed(list(_tensors().items())))
    reordered = artifact.encode(reordered_header, reordered_tensors)
    assert artifact.encode(HEADER, _tensors()) == reordered


def test_preamble_header_and_tensors_follow_the_documented_layout():
    data = artifact.encode(HEADER, _tensors())
    magic, version, header_nbytes, payload_nbytes, digest, reserved = struct.unpack_from(
        "<8sIIQ32s8s", data)
    assert magic == b"\x89MSART\r\n" and version == artifact.FORMAT_VERSION
    assert reserved == bytes(8)
    assert payload_nbytes == len(data) - 64
    assert digest == hashlib.sha256(data[64:]).digest()
    header_bytes = data[64:64 + header_nbytes]
    header = json.loads(header_bytes)
    assert header_bytes == artifact.canonical_json(header)  # sorted keys, no spaces
    data_start = -(-(64 + header_nbytes) // 64) * 64
    names = [entry["name"] for entry in header["tensors"]]
    assert names == sorted(names)
    for entry in header["tensors"]:
        assert entry["offset"] % 64 == 0
        start = data_start + entry["offset"]
        assert data[start:start + entry["nbytes"]] == _tensors()[entry["name"]].tobytes()


def test_version_is_the_sha256_of_the_whole_file(tmp_path):
    path = tmp_path / "toy.model"
    version = artifact.write(path, HEADER, _tensors())
    assert version == hashlib.sha256(path.read_bytes()).hexdigest()
    assert artifact.read(path).version == version


def test_decoded_tensors_are_read_only_memoryviews_of_the_file_bytes():
    decoded = artifact.decode(artifact.encode(HEADER, _tensors()))
    weight = decoded.tensors["a.weight"]
    assert isinstance(weight, memoryview) and weight.readonly
    assert (weight.format, weight.shape, weight[1, 0]) == ("b", (2, 3), -127)
    assert decoded.tensors["b.scale"].format == "f" and decoded.tensors["c.count"].format == "i"
    with pytest.raises(TypeError, match="read-only"):
        weight[0, 0] = 1


def test_writer_takes_any_buffer_of_a_stored_dtype():
    as_buffers = {
        "b.scale": array.array("f", [0.5, 2.0, -1.25]),
        "a.weight": memoryview(bytes([1, 254, 127, 129, 0, 3])).cast("b", (2, 3)),
        "c.count": array.array("i", [7, -9]),
    }
    assert artifact.encode(HEADER, as_buffers) == artifact.encode(HEADER, _tensors())


def test_tensors_without_elements_decode_as_empty_views():
    decoded = artifact.decode(artifact.encode(HEADER, {"e": np.zeros((0, 3), np.float32)}))
    assert decoded.header["tensors"][0]["shape"] == [0, 3]
    assert len(decoded.tensors["e"]) == 0 and decoded.tensors["e"].format == "f"


@pytest.mark.parametrize("dtype", [np.float64, np.bool_, np.int64, ">f4", ">i4", np.int16])
def test_writer_refuses_dtypes_the_format_does_not_define(dtype):
    with pytest.raises(ValueError, match="cannot be stored"):
        artifact.encode(HEADER, {"t": np.zeros(2, dtype=dtype)})


def test_writer_refuses_non_contiguous_arrays_and_non_buffers():
    with pytest.raises(ValueError, match="C-contiguous"):
        artifact.encode(HEADER, {"t": np.zeros((4, 4), np.float32)[:, ::2]})
    with pytest.raises(ValueError, match="not a buffer"):
        artifact.encode(HEADER, {"t": [1.0, 2.0]})


def test_writer_refuses_a_header_that_already_describes_tensors():
    with pytest.raises(ValueError, match="tensors"):
        artifact.encode(dict(HEADER, tensors=[]), {})


def test_writer_refuses_nan_in_the_header():
    with pytest.raises(ValueError):
        artifact.encode({"metrics": {"accuracy": float("nan")}}, {})


def test_float16_tensors_round_trip_as_their_bit_patterns():
    values = np.array([[0.5, -2.0], [65504.0, 1e-3]], dtype=np.float16)
    decoded = artifact.decode(artifact.encode(HEADER, {"h": values}))
    view = decoded.tensors["h"]
    assert view.format == "H" and view.shape == (2, 2)
    assert decoded.header["tensors"][0]["dtype"] == "float16"
    assert np.array_equal(np.asarray(view).view(np.float16), values)
