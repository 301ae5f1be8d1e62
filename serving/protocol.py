"""Request bodies in, response bodies out: the Open Inference Protocol v2
(`/v2/models/{m}/infer`: one input tensor with name, shape, datatype and flat or
nested row-major data), and the helpers a handler's task endpoint uses to read
its own requests (`flatten`, `to_rows`, `describe`, `only_fields`, `is_int`).

Every check raises `errors.BadRequestError` with a message naming the field,
the value and what is accepted. Values are validated here, per request,
before a request can join a batch: one bad request must not fail the batch.
"""

import dataclasses
import math
import os

import orjson

from serving import binary_data, contract
from serving.errors import BadRequestError
from serving.handler import TextSpec

# OIP datatypes the model takes (it converts every one to float), with the
# Python type JSON data must have for each.
_INTEGER_TYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
_FLOAT_TYPES = ("FP16", "FP32", "FP64")
ACCEPTED_DATATYPES = _INTEGER_TYPES + _FLOAT_TYPES
_REJECTED_DATATYPES = {
    "BOOL": "a {value} is a level from 0 to {max}, not a boolean",
    "BYTES": "a {value} is a number, not a string",
}
_NUMBER = (int, float)
_MAX_DEPTH = 4
# The common request, read by `_plain_infer` with a few checks: one flat JSON tensor,
# no parameters or outputs. Anything else goes through the full checks.
_PLAIN_KEYS = frozenset(("id", "inputs"))
_PLAIN_TENSOR_KEYS = frozenset(("name", "shape", "datatype", "data"))
_PLAIN_VALUE_TYPES = {**{t: frozenset((int,)) for t in _INTEGER_TYPES},
                      **{t: frozenset((int, float)) for t in _FLOAT_TYPES}}


@dataclasses.dataclass(frozen=True)
class InferRequest:
    """A validated OIP infer request."""

    x: list  # rows of n_inputs floats
    request_id: str
    outputs: tuple
    id_generated: bool = False  # the request had no id: request_id is a new random one


def parse_json(body):
    """The JSON object in `body`, or BadRequestError saying why it is not one."""
    if not body:
        raise BadRequestError("the request body is empty; send a JSON object.")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        hint = ""
        if b"NaN" in body or b"Infinity" in body or "infinity" in str(err):
            hint = " NaN and infinite numbers are not JSON and not valid values."
        raise BadRequestError(f"the request body is not valid JSON: {err}.{hint}") from None
    if not isinstance(doc, dict):
        raise BadRequestError(
            f"the request body must be a JSON object, not {_json_type(doc)}.")
    return doc


def parse_infer(doc, spec, binary=None):
    """An OIP v2 infer request body -> InferRequest.

    `binary` is the part of the body after the JSON when the request uses the
    binary tensor data extension (`binary_data`), None when it does not.
    """
    text = isinstance(spec, TextSpec)
    if binary is None and not text:
        plain = _plain_infer(doc, spec)
        if plain is not None:
            return plain
    only_fields(doc, ("id", "parameters", "inputs", "outputs"), "the request")
    request_id = doc.get("id")
    generated = "id" not in doc
    if generated:
        request_id = new_request_id()
    elif not isinstance(request_id, str):
        raise BadRequestError(f"'id' must be a string, got {describe(request_id)}.")
    parameters = _optional_object(doc, "parameters", "the request")
    binary_output = _optional_bool(parameters, "binary_data_output", "parameters")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadRequestError(
            f"'inputs' must be an array of exactly one tensor (input '{spec.input_name}'"
            f"{', BYTES' if text else ''}), got {describe(inputs)}.")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise BadRequestError(f"inputs[0] must be an object, got {describe(tensor)}.")
    if text:  # texts in, one vector per text out
        x = _text_tensor(tensor, spec, binary)
        outputs = _requested_outputs(doc, binary_output, (spec.output_name,))
    else:
        x = _input_tensor(tensor, spec, binary)
        outputs = _requested_outputs(doc, binary_output)
    return InferRequest(x=x, request_id=request_id, outputs=outputs, id_generated=generated)


def _plain_infer(doc, spec):
    """The InferRequest of the common form, or None to take the full checks.

    The hot path: one flat tensor of numbers of the right length, shape
    [N, n_inputs], no parameters or outputs. Each condition here is one the full
    checks apply too (a request passing them gets the same result both ways);
    a request failing any of them may still be valid, or gets the full checks'
    message, so this never refuses anything itself (but `to_rows`' range check,
    the same call as the full path's).
    """
    if not doc.keys() <= _PLAIN_KEYS:
        return None
    request_id = doc.get("id")
    if not isinstance(request_id, str) and (request_id is not None or "id" in doc):
        return None
    x = _plain_rows(doc.get("inputs"), spec)
    if x is None:
        return None
    if request_id is None:
        return InferRequest(x=x, request_id=new_request_id(), outputs=_DEFAULT_OUTPUTS,
                            id_generated=True)
    return InferRequest(x=x, request_id=request_id, outputs=_DEFAULT_OUTPUTS)


def _plain_rows(inputs, spec):  # pylint: disable=too-many-return-statements
    """The rows of `inputs` when it is one plain flat tensor (see `_plain_infer`), else None."""
    # `type(...) is` rather than isinstance: bool is an int subclass, and not a number here.
    # pylint: disable=unidiomatic-typecheck
    if type(inputs) is not list or len(inputs) != 1:
        return None
    tensor = inputs[0]
    if type(tensor) is not dict or tensor.keys() != _PLAIN_TENSOR_KEYS:
        return None
    shape, data, datatype = tensor["shape"], tensor["data"], tensor["datatype"]
    value_types = _PLAIN_VALUE_TYPES.get(datatype) if type(datatype) is str else None
    if value_types is None or tensor["name"] != spec.input_name:
        return None
    if type(shape) is not list or len(shape) != 2 or type(shape[0]) is not int \
            or type(shape[1]) is not int:
        return None
    if shape[1] != spec.n_inputs or not 1 <= shape[0] <= contract.MAX_INSTANCES:
        return None
    if type(data) is not list or len(data) != shape[0] * spec.n_inputs \
            or not set(map(type, data)) <= value_types:
        return None
    return to_rows(data, shape[0], spec, "inputs[0].data")


def new_request_id():
    """A random id for a request that has none: a UUID version 4 as 32 hexadecimal characters
    (what `uuid.uuid4().hex` gives, at a third of its cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def _input_tensor(tensor, spec, binary):
    only_fields(tensor, ("name", "shape", "datatype", "data", "parameters"), "inputs[0]")
    parameters = _optional_object(tensor, "parameters", "inputs[0]")
    size = parameters.get("binary_data_size")
    for field in ("name", "shape", "datatype") + (("data",) if size is None else ()):
        if field not in tensor:
            raise BadRequestError(f"inputs[0].{field} is missing.")
    name, datatype, shape = tensor["name"], tensor["datatype"], tensor["shape"]
    if name != spec.input_name:
        raise BadRequestError(f"unknown input {describe(name)}: model '{spec.model_name}' "
                              f"has one input, '{spec.input_name}'.")
    if not isinstance(datatype, str):
        raise BadRequestError(f"inputs[0].datatype must be a string, got {describe(datatype)}; "
                              f"use one of {', '.join(ACCEPTED_DATATYPES)}.")
    if datatype in _REJECTED_DATATYPES:
        raise BadRequestError(
            f"inputs[0].datatype {datatype} is not accepted: "
            + _REJECTED_DATATYPES[datatype].format(value=spec.value, max=spec.max_level)
            + f". Use one of {', '.join(ACCEPTED_DATATYPES)}.")
    if datatype not in ACCEPTED_DATATYPES:
        raise BadRequestError(f"inputs[0].datatype {describe(datatype)} is not an OIP "
                              f"datatype this model takes; use one of "
                              f"{', '.join(ACCEPTED_DATATYPES)}.")
    if not isinstance(shape, list) or not shape or not all(is_int(d) and d >= 0 for d in shape):
        raise BadRequestError(
            f"inputs[0].shape must be an array of non-negative integers, got {describe(shape)}.")
    if tuple(shape[1:]) not in spec.row_shapes() or shape[0] < 1:
        raise BadRequestError(
            f"inputs[0].shape {shape} is not accepted: use [N, {spec.n_inputs}]"
            + (f" or [N, {', '.join(map(str, spec.image_shape))}]" if spec.image_shape else "")
            + f" with 1 <= N <= {contract.MAX_INSTANCES}.")
    if shape[0] > contract.MAX_INSTANCES:
        raise BadRequestError(f"inputs[0].shape {shape} has {shape[0]} rows; at most "
                              f"{contract.MAX_INSTANCES} per request.")
    count = math.prod(shape)
    if size is not None:
        flat = _binary_input(tensor, size, binary, datatype, count)
    else:
        if binary is not None and len(binary):
            raise BadRequestError(
                f"the body has {len(binary)} bytes after its JSON header but no input says "
                "parameters.binary_data_size; send the tensor either as JSON 'data' or in "
                "binary with its size.")
        flat = _json_input(tensor["data"], shape, count, datatype)
    return to_rows(flat, shape[0], spec, "inputs[0].data")


def _binary_input(tensor, size, binary, datatype, count):
    if not is_int(size) or size < 0:
        raise BadRequestError(f"inputs[0].parameters.binary_data_size must be a byte count, "
                              f"got {describe(size)}.")
    if binary is None:
        raise BadRequestError(
            "inputs[0].parameters.binary_data_size is set but the request has no "
            f"{binary_data.HEADER.title()} header: send the header with the length of the "
            "JSON part, the tensor bytes after it (binary tensor data extension).")
    if "data" in tensor:
        raise BadRequestError("inputs[0] has both 'data' and parameters.binary_data_size; send "
                              "the tensor one way only.")
    if size != len(binary):
        raise BadRequestError(
            f"inputs[0].parameters.binary_data_size is {size} but {len(binary)} bytes follow "
            "the JSON header; they must be equal (the model has one input).")
    return binary_data.decode(datatype, binary, count, "inputs[0]")


def _json_input(data, shape, count, datatype):
    if not isinstance(data, list):
        raise BadRequestError(f"inputs[0].data must be an array, got {describe(data)}.")
    flat, data_shape = flatten(data, "inputs[0].data")
    if len(data_shape) > 1 and list(data_shape) != shape:
        raise BadRequestError(f"inputs[0].data is nested as {list(data_shape)} but shape says "
                              f"{shape}; nest it as the shape or send it flat.")
    if len(flat) != count:
        raise BadRequestError(f"inputs[0].data has {len(flat)} values; shape {shape} needs "
                              f"{count}.")
    if datatype in _INTEGER_TYPES:
        for i, value in enumerate(flat):
            if not is_int(value) and not (isinstance(value, float) and value.is_integer()):
                raise BadRequestError(f"inputs[0].data[{i}] is {value!r}, not an integer, but "
                                      f"datatype is {datatype}.")
    return flat


_DEFAULT_OUTPUTS = tuple((name, False) for name in contract.OUTPUT_NAMES)


def _requested_outputs(doc, binary_output, names=contract.OUTPUT_NAMES):
    """((name, binary), ...) of the outputs to send, in request order, without repeats."""
    if "outputs" not in doc:
        return tuple((name, binary_output) for name in names)
    outputs = doc["outputs"]
    if not isinstance(outputs, list) or not outputs:
        raise BadRequestError(f"'outputs' must be a non-empty array of {{\"name\": ...}} objects, "
                              f"got {describe(outputs)}.")
    chosen = {}
    for i, item in enumerate(outputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequestError(f"outputs[{i}] must be an object with a string 'name'.")
        only_fields(item, ("name", "parameters"), f"outputs[{i}]")
        parameters = _optional_object(item, "parameters", f"outputs[{i}]")
        if item["name"] not in names:
            raise BadRequestError(f"outputs[{i}].name {item['name']!r} is not an output "
                                  f"of this model; outputs: {', '.join(names)}.")
        if parameters.get("classification") not in (None, 0):
            raise BadRequestError(f"outputs[{i}].parameters.classification is not supported; "
                                  f"ask for outputs '{contract.OUTPUT_PROBABILITIES}' and "
                                  f"'{contract.OUTPUT_LABEL}' instead.")
        binary = _optional_bool(parameters, "binary_data", f"outputs[{i}].parameters")
        chosen.setdefault(item["name"], binary or binary_output)
    return tuple(chosen.items())


def _text_tensor(tensor, spec, binary):
    only_fields(tensor, ("name", "shape", "datatype", "data", "parameters"), "inputs[0]")
    parameters = _optional_object(tensor, "parameters", "inputs[0]")
    size = parameters.get("binary_data_size")
    for field in ("name", "shape", "datatype") + (("data",) if size is None else ()):
        if field not in tensor:
            raise BadRequestError(f"inputs[0].{field} is missing.")
    name, datatype, shape = tensor["name"], tensor["datatype"], tensor["shape"]
    if name != spec.input_name:
        raise BadRequestError(f"unknown input {describe(name)}: model '{spec.model_name}' "
                              f"has one input, '{spec.input_name}' (BYTES).")
    if datatype != "BYTES":
        raise BadRequestError(f"inputs[0].datatype must be BYTES (UTF-8 {spec.item}s), got "
                              f"{describe(datatype)}.")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 2
            and all(is_int(d) and d >= 0 for d in shape)) \
            or shape[0] < 1 or shape[1:] not in ([], [1]):
        raise BadRequestError(
            f"inputs[0].shape must be [N] or [N, 1] with 1 <= N <= {contract.MAX_INSTANCES} "
            f"(one {spec.item} per row), got {describe(shape)}.")
    count = shape[0]
    if count > contract.MAX_INSTANCES:
        raise BadRequestError(f"inputs[0].shape {shape} has {count} {spec.item}s; at most "
                              f"{contract.MAX_INSTANCES} per request.")
    if size is not None:
        if binary is None or not is_int(size) or size != len(binary) or "data" in tensor:
            raise BadRequestError(
                "inputs[0].parameters.binary_data_size must be the byte count of the tensor "
                "sent after the JSON (with the Inference-Header-Content-Length header), and "
                "the input must then have no 'data'.")
        texts = _binary_texts(binary, count, spec)
    else:
        if binary is not None and len(binary):
            raise BadRequestError(
                f"the body has {len(binary)} bytes after its JSON header but no input says "
                "parameters.binary_data_size; send the texts either as JSON 'data' or in "
                "binary with their size.")
        data = tensor["data"]
        if not isinstance(data, list):
            raise BadRequestError(f"inputs[0].data must be an array of strings, got "
                                  f"{describe(data)}.")
        texts = [item[0] if isinstance(item, list) and len(item) == 1 else item
                 for item in data]
        if len(texts) != count:
            raise BadRequestError(f"inputs[0].data has {len(texts)} {spec.item}s; shape "
                                  f"{shape} needs {count}.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequestError(f"inputs[0].data[{i}] must be a string, got "
                                  f"{describe(text)}.")
        if len(text) > spec.max_chars:
            raise BadRequestError(f"inputs[0].data[{i}] has {len(text)} characters; at most "
                                  f"{spec.max_chars} per {spec.item}.")
    return texts


def _binary_texts(raw, count, spec):
    """`count` BYTES elements (4-byte little-endian length, then the bytes) as texts."""
    texts, at, view = [], 0, memoryview(raw)
    for i in range(count):
        if at + 4 > len(view):
            raise BadRequestError(f"inputs[0]: the binary data ends before element {i} of "
                                  f"{count}.")
        n = int.from_bytes(view[at:at + 4], "little")
        at += 4
        if at + n > len(view):
            raise BadRequestError(f"inputs[0]: binary element {i} says {n} bytes, but only "
                                  f"{len(view) - at} follow.")
        try:
            texts.append(str(view[at:at + n], "utf-8"))
        except UnicodeDecodeError as err:
            raise BadRequestError(f"inputs[0]: binary element {i} is not UTF-8 ({err.reason} "
                                  f"at byte {err.start}); send {spec.item}s as UTF-8.") from None
        at += n
    if at != len(view):
        raise BadRequestError(f"inputs[0]: {len(view) - at} bytes follow the {count} binary "
                              "elements the shape says; send exactly the tensor's bytes.")
    return texts


def flatten(data, where):
    """Nested arrays of numbers -> (flat list, shape). Rectangular, numbers only."""
    shape = []
    level = data
    while isinstance(level, list):
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    depth = len(shape)
    if depth > _MAX_DEPTH:
        raise BadRequestError(f"{where} is nested {depth} deep; rows are at most "
                              f"{_MAX_DEPTH - 1}-D arrays of numbers.")
    flat = []
    _collect(data, 0, depth, shape, flat, where)
    return flat, tuple(shape)


def _collect(node, level, depth, shape, flat, where):
    if level == depth - 1:
        if len(node) != shape[level]:
            raise BadRequestError(f"{where} is ragged: an array at depth {level} has "
                                  f"{len(node)} items, another {shape[level]}.")
        for value in node:
            if type(value) not in _NUMBER:  # bool and None are not numbers here
                raise BadRequestError(f"{where} holds {describe(value)}; values must be "
                                      "numbers.")
        flat.extend(node)
        return
    if len(node) != shape[level]:
        raise BadRequestError(f"{where} is ragged: an array at depth {level} has {len(node)} "
                              f"items, another {shape[level]}.")
    for child in node:
        if not isinstance(child, list):
            raise BadRequestError(f"{where} mixes arrays and {describe(child)} at depth "
                                  f"{level + 1}.")
        _collect(child, level + 1, depth, shape, flat, where)


def to_rows(flat, rows, spec, where):
    """Flat values -> `rows` lists of n_inputs floats, within the model's levels.

    The floats are canonical (ints converted, no negative zeros): the cache keys on
    their bytes. JSON has no NaN but binary tensor data has: min/max skip NaN
    depending on where it is, so a NaN sum catches it first.
    """
    n, top = spec.n_inputs, spec.max_level
    out = []
    for r in range(rows):
        try:
            row = [v + 0.0 for v in flat[r * n:(r + 1) * n]]
        except OverflowError:
            raise BadRequestError(f"{where} holds a number too large for a {spec.value} value; "
                                  f"{spec.value} values are levels from 0 to {top}.") from None
        total = sum(row)
        if math.isnan(total) or not (min(row) >= 0.0 and max(row) <= top):
            col = next(c for c, v in enumerate(row) if not 0.0 <= v <= top)
            raise BadRequestError(
                f"{where}: {spec.item} {r}, {spec.value} {col} is {row[col]!r}; {spec.value} "
                f"values must be levels from 0 to {top}.")
        out.append(row)
    return out


def is_int(value):
    """Whether `value` is a JSON integer (bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def only_fields(doc, allowed, where):
    """BadRequestError unless every key of `doc` is in `allowed`."""
    for key in doc:
        if key not in allowed:
            raise BadRequestError(f"{where} has an unknown field {key!r}; fields: "
                                  f"{', '.join(allowed)}.")


def _optional_object(doc, key, where):
    if key not in doc:
        return {}
    value = doc[key]
    if not isinstance(value, dict):
        raise BadRequestError(f"{where}.{key} must be an object, got {describe(value)}.")
    return value


def _optional_bool(doc, key, where):
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise BadRequestError(f"{where}.{key} must be true or false, got {describe(value)}.")
    return value


def shape_words(spec):
    """How one row may be sent, in words."""
    words = f"an array of {spec.n_inputs} {spec.value} levels"
    if spec.image_shape:
        words += f" or {' arrays of '.join(map(str, spec.image_shape))} levels"
    return words


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def describe(value):
    """`value` in a few words for an error message: its JSON type and start."""
    if isinstance(value, (int, float)):
        text = repr(value)  # orjson cannot write integers beyond 64 bits
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # a huge integer inside an array or object
            text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{_json_type(value)} ({text})" if value is not None else "null"


# --- responses ---------------------------------------------------------------

def infer_body(spec, version, request, proba, api_version=contract.API_VERSION):
    """The OIP infer response for `request` with probabilities `proba` (a text encoder's
    vectors): (JSON doc, binary).

    Outputs asked for in binary carry `parameters.binary_data_size` instead of
    `data`, and their bytes are in `binary` in output order (b"" when none is).
    """
    outputs = []
    chunks = []
    n_classes = len(spec.labels)
    for name, binary in request.outputs:
        if isinstance(spec, TextSpec):
            output = {"name": name, "datatype": "FP32", "shape": [len(proba), spec.dimension]}
            data = [v for row in proba for v in row]
        elif name == contract.OUTPUT_PROBABILITIES:
            output = {"name": name, "datatype": "FP32", "shape": [len(proba), n_classes]}
            data = [v for row in proba for v in row]
        else:
            output = {"name": name, "datatype": "BYTES", "shape": [len(proba)]}
            labels = spec.labels
            # The first most probable class (as max(range(n), key=row.__getitem__)).
            data = [labels[row.index(max(row))] for row in proba]
        if binary:
            raw = binary_data.encode(output["datatype"], data)
            output["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            output["data"] = data
        outputs.append(output)
    doc = {
        "model_name": spec.model_name,
        "model_version": version,
        "id": request.request_id,
        "parameters": {"api_version": api_version, "format": contract.RESULTS_FORMAT},
        "outputs": outputs,
    }
    return doc, b"".join(chunks)
