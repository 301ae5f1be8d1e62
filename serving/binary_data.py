"""The Open Inference Protocol's binary tensor data extension (Triton/KServe REST).

A request may carry tensors as raw bytes after its JSON: the
`Inference-Header-Content-Length` request header gives the JSON's length, and
each input that is sent this way says its byte count in
`parameters.binary_data_size` (inputs take their bytes in order). Outputs
asked for in binary (`binary_data` in an output's parameters, or
`binary_data_output` in the request's) are appended the same way to the
response, which then carries the header itself.

Tensor bytes are little-endian and row-major; a BYTES element is a 4-byte
little-endian length followed by that many bytes. Everything here is pure
Python (`struct`): the production image has no numpy.
"""

import struct

from serving.errors import BadRequestError

HEADER = "inference-header-content-length"
CONTENT_TYPE = "application/octet-stream"

# struct codes (standard sizes, little-endian with "<") of the fixed-size datatypes.
_CODES = {
    "BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
    "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "FP16": "e", "FP32": "f", "FP64": "d",
}


def element_size(datatype):
    """Bytes per element of a fixed-size datatype (None for BYTES and unknown types)."""
    code = _CODES.get(datatype)
    return struct.calcsize("<" + code) if code else None


def split(body, header_value):
    """(JSON bytes, binary bytes) of a request body whose JSON is `header_value` bytes long."""
    text = header_value.strip()
    if not text.isdigit() or not text.isascii():
        raise BadRequestError(
            f"Inference-Header-Content-Length {header_value!r} is not a byte count; it must be "
            "the length of the JSON part of the body.")
    length = int(text)
    if length > len(body):
        raise BadRequestError(
            f"Inference-Header-Content-Length is {length} but the body has only {len(body)} "
            "bytes; it must be the length of the JSON part of the body.")
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def decode(datatype, raw, count, where):
    """`count` values of `datatype` from the little-endian bytes `raw`, as a list."""
    size = element_size(datatype)
    if size is None:
        raise BadRequestError(f"{where}: datatype {datatype} cannot be sent as binary data.")
    if len(raw) != size * count:
        raise BadRequestError(
            f"{where}.parameters.binary_data_size is {len(raw)} bytes; shape and datatype "
            f"{datatype} need {count} x {size} = {size * count} bytes.")
    return list(struct.unpack(f"<{count}{_CODES[datatype]}", raw))


def encode(datatype, values):
    """The little-endian bytes of `values` as `datatype` (fixed-size types and BYTES)."""
    if datatype == "BYTES":
        parts = []
        for value in values:
            data = value.encode() if isinstance(value, str) else bytes(value)
            parts.append(struct.pack("<I", len(data)))
            parts.append(data)
        return b"".join(parts)
    return struct.pack(f"<{len(values)}{_CODES[datatype]}", *values)
