"""Broken artifacts give a typed error that says what is wrong, never a crash or garbage.

Each fixture is made here from the real artifact and named for how it is broken.
"""

import hashlib
import json
import struct

import numpy as np
import pytest

from inference import artifact, errors
from inference.model import Model
from models.digits import paths

_PREAMBLE = struct.Struct("<8sIIQ32s8s")


@pytest.fixture(name="good", scope="module")
def fixture_good():
    """The bytes of the unbroken built artifact."""
    with open(paths.model_path(), "rb") as src:
        return src.read()


def _align(n):
    return -(-n // 64) * 64


def _with_header(data, edit):
    """The artifact with its JSON header edited, re-sealed with a valid checksum."""
    header_nbytes = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(data[64:64 + header_nbytes])
    edit(header)
    raw = artifact.canonical_json(header)
    payload = raw + bytes(_align(64 + len(raw)) - 64 - len(raw)) + \
        data[_align(64 + header_nbytes):]
    return _PREAMBLE.pack(artifact.MAGIC, artifact.FORMAT_VERSION, len(raw), len(payload),
                          hashlib.sha256(payload).digest(), bytes(8)) + payload


def _load(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    return Model.load(path)


def _tensor_entry(header, name):
    return next(entry for entry in header["tensors"] if entry["name"] == name)


def test_the_unbroken_artifact_loads(tmp_path, good):
    assert _load(tmp_path, good, "good.model").version == hashlib.sha256(good).hexdigest()


def test_empty_file_is_reported_truncated(tmp_path):
    with pytest.raises(errors.TruncatedArtifactError, match="0 bytes"):
        _load(tmp_path, b"", "empty.model")


def test_file_cut_inside_the_preamble_is_reported_truncated(tmp_path, good):
    with pytest.raises(errors.TruncatedArtifactError, match="preamble"):
        _load(tmp_path, good[:40], "cut_in_preamble.model")


def test_file_cut_inside_the_weights_names_expected_and_actual_size(tmp_path, good):
    with pytest.raises(errors.TruncatedArtifactError) as caught:
        _load(tmp_path, good[:-100], "cut_in_weights.model")
    assert f"announces {len(good)} bytes, the file has {len(good) - 100}" in str(caught.value)


def test_other_file_type_is_reported_as_not_an_artifact(tmp_path):
    with open(paths.dataset_path(), "rb") as src:
        npy = src.read()
    with pytest.raises(errors.CorruptArtifactError, match="not a model artifact"):
        _load(tmp_path, npy, "dataset_not_model.model")


def test_flipped_bit_in_the_weights_fails_the_checksum(tmp_path, good):
    broken = bytearray(good)
    broken[-50] ^= 0x04
    with pytest.raises(errors.CorruptArtifactError, match="sha256"):
        _load(tmp_path, bytes(broken), "flipped_bit.model")


def test_trailing_bytes_are_refused(tmp_path, good):
    with pytest.raises(errors.CorruptArtifactError, match="trailing"):
        _load(tmp_path, good + b"\0\0\0", "trailing_bytes.model")


def test_future_format_version_names_both_versions(tmp_path, good):
    future = good[:8] + struct.pack("<I", artifact.FORMAT_VERSION + 1) + good[12:]
    with pytest.raises(errors.IncompatibleArtifactError) as caught:
        _load(tmp_path, future, "future_format.model")
    message = str(caught.value)
    assert f"format version {artifact.FORMAT_VERSION + 1}" in message
    assert f"reads format version {artifact.FORMAT_VERSION}" in message


def test_unknown_output_schema_is_incompatible(tmp_path, good):
    def edit(header):
        header["output"]["schema_version"] = 99
    with pytest.raises(errors.IncompatibleArtifactError, match="output schema version 99"):
        _load(tmp_path, _with_header(good, edit), "output_schema_99.model")


def test_tensor_pointing_past_the_end_is_refused_before_use(tmp_path, good):
    def edit(header):
        _tensor_entry(header, "dense2.weight")["offset"] += 1 << 20
    with pytest.raises(errors.CorruptArtifactError, match="dense2.weight.*out of bounds"):
        _load(tmp_path, _with_header(good, edit), "tensor_out_of_bounds.model")


def test_tensor_size_that_does_not_match_its_shape_is_refused(tmp_path, good):
    def edit(header):
        _tensor_entry(header, "dense1.weight")["shape"] = [64, 65]
    with pytest.raises(errors.CorruptArtifactError, match="do not hold"):
        _load(tmp_path, _with_header(good, edit), "shape_size_mismatch.model")


def test_missing_tensor_is_named(tmp_path, good):
    def edit(header):
        header["tensors"] = [t for t in header["tensors"] if t["name"] != "dense2.bias"]
    with pytest.raises(errors.CorruptArtifactError, match="'dense2.bias' is missing"):
        _load(tmp_path, _with_header(good, edit), "missing_tensor.model")


def test_labels_that_do_not_match_the_output_layer_are_refused(tmp_path, good):
    def edit(header):
        header["labels"] = header["labels"][:-1]
    with pytest.raises(errors.CorruptArtifactError, match="dense2"):
        _load(tmp_path, _with_header(good, edit), "nine_labels.model")


def test_header_that_is_not_json_is_corrupt(tmp_path, good):
    header_nbytes = struct.unpack_from("<I", good, 12)[0]
    payload = b"!" + good[65:]  # the header starts with "{"
    broken = _PREAMBLE.pack(artifact.MAGIC, artifact.FORMAT_VERSION, header_nbytes,
                            len(payload), hashlib.sha256(payload).digest(), bytes(8)) + payload
    with pytest.raises(errors.CorruptArtifactError, match="not valid JSON"):
        _load(tmp_path, broken, "header_not_json.model")


def test_nan_scale_is_refused(tmp_path, good):
    loaded = artifact.decode(good)
    tensors = dict(loaded.tensors)
    tensors["dense1.scale"] = np.full_like(tensors["dense1.scale"], np.nan)
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    with pytest.raises(errors.CorruptArtifactError, match="scales must be finite"):
        _load(tmp_path, artifact.encode(header, tensors), "nan_scale.model")


def test_missing_file_is_an_artifact_error_naming_the_path(tmp_path):
    with pytest.raises(errors.ArtifactUnreadableError, match="nowhere.model"):
        Model.load(tmp_path / "nowhere.model")


def test_pinned_version_refuses_any_other_model(tmp_path, good):
    path = tmp_path / "good.model"
    path.write_bytes(good)
    with pytest.raises(errors.VersionMismatchError, match="0" * 64):
        Model.load(path, expected_version="0" * 64)
    assert Model.load(path, expected_version=hashlib.sha256(good).hexdigest())


def test_every_failure_is_an_artifact_error():
    for error in (errors.TruncatedArtifactError, errors.CorruptArtifactError,
                  errors.IncompatibleArtifactError, errors.VersionMismatchError,
                  errors.ArtifactUnreadableError):
        assert issubclass(error, errors.ArtifactError)
