"""A reader of the safetensors format, with numpy (no safetensors package).

Layout: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON
({tensor name: {"dtype", "shape", "data_offsets": [begin, end]}, and an optional
"__metadata__" object of strings}), then the raw little-endian C-order tensor
data; offsets are relative to the first byte after the header.
"""

import json
import struct

import numpy as np

# safetensors dtype names -> little-endian numpy dtypes (the ones a BERT
# checkpoint uses; others are refused by name).
DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """The file is not a well-formed safetensors file; the message says where."""


def read(path):
    """({name: read-only numpy array}, metadata dict) of a safetensors file."""
    with open(path, "rb") as src:
        data = src.read()
    return parse(data, source=str(path))


def parse(data, source="<bytes>"):
    """Parses safetensors bytes; raises SafetensorsError naming what is wrong."""
    if len(data) < 8:
        raise SafetensorsError(f"{source}: {len(data)} bytes, too short for a safetensors "
                               "file (an 8-byte header length comes first)")
    (n_header,) = struct.unpack_from("<Q", data)
    if n_header > min(_MAX_HEADER, len(data) - 8):
        raise SafetensorsError(f"{source}: header length {n_header} does not fit the "
                               f"{len(data)}-byte file; it is truncated or not safetensors")
    try:
        header = json.loads(data[8:8 + n_header].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise SafetensorsError(f"{source}: the header is not UTF-8 JSON ({err})") from err
    if not isinstance(header, dict):
        raise SafetensorsError(f"{source}: the header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n_header:]
    tensors, spans = {}, []
    for name, entry in header.items():
        where = f"{source}: tensor {name!r}"
        if not isinstance(entry, dict):
            raise SafetensorsError(f"{where}: its header entry is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPES:
            raise SafetensorsError(f"{where}: dtype {dtype!r} is not supported "
                                   f"(known: {', '.join(sorted(DTYPES))})")
        if not (isinstance(shape, list) and all(_count(d) for d in shape)):
            raise SafetensorsError(f"{where}: invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(o) for o in offsets)
                and offsets[0] <= offsets[1] <= len(body)):
            raise SafetensorsError(f"{where}: data_offsets {offsets!r} lie outside the "
                                   f"{len(body)}-byte data section")
        np_dtype = np.dtype(DTYPES[dtype])
        expected = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        if offsets[1] - offsets[0] != expected:
            raise SafetensorsError(f"{where}: {offsets[1] - offsets[0]} bytes do not hold a "
                                   f"{dtype} array of shape {shape} ({expected} bytes)")
        array = np.frombuffer(body[offsets[0]:offsets[1]], dtype=np_dtype).reshape(shape)
        tensors[name] = array
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise SafetensorsError(f"{source}: tensors {first!r} and {second!r} overlap")
    return tensors, metadata


def encode(tensors, metadata=None):
    """Safetensors bytes of {name: numpy array} (for tests: broken inputs are made by
    writing them). Tensors are laid out in name order."""
    names = {np.dtype(v): k for k, v in DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[array.dtype.newbyteorder("<")
                                       if array.dtype.itemsize > 1 else array.dtype],
                        "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
