"""Request bodies in, response bodies out: the two wire formats of the service.

- `/v1/predict` (the task API):
  `{"instances": [[64 pixel levels], ...], "top_k": 3}` -> `contract.results_schema()`.
- Open Inference Protocol v2 (`/v2/models/{m}/infer`): one input tensor with
  name, shape, datatype and flat or nested row-major data.

Every check raises `errors.BadRequestError` with a message naming the field,
the value and what is accepted. Pixel values are validated here, per request,
before a request can join a batch: one bad request must not fail the batch.
"""

import dataclasses
import math
import uuid

import orjson

from services.digits import binary_data, contract
from services.digits.errors import BadRequestError

# OIP datatypes the model takes (it converts every one to float), with the
# Python type JSON data must have for each.
_INTEGER_TYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")
_FLOAT_TYPES = ("FP16", "FP32", "FP64")
ACCEPTED_DATATYPES = _INTEGER_TYPES + _FLOAT_TYPES
_REJECTED_DATATYPES = {
    "BOOL": "a pixel is a level from 0 to {max}, not a boolean",
    "BYTES": "a pixel is a number, not a string",
}
_NUMBER = (int, float)
_MAX_DEPTH = 4


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the served model takes and returns, from its artifact metadata."""

    model_name: str
    input_name: str
    n_inputs: int
    image_shape: tuple
    max_level: int
    labels: tuple

    @classmethod
    def from_model(cls, model, model_name):
        """The spec of a loaded `inference.model.Model` served as `model_name`."""
        meta = model.metadata["input"]
        n_inputs = int(meta["shape"][0])
        image_shape = tuple(meta.get("image_shape") or ())
        return cls(model_name=model_name, input_name=meta.get("name") or contract.INPUT_NAME,
                   n_inputs=n_inputs, image_shape=image_shape,
                   max_level=int(meta["value_range"][1]), labels=tuple(model.labels))

    def row_shapes(self):
        """Accepted shapes of one instance: flat, and as an image if the model has one."""
        return [(self.n_inputs,)] + ([self.image_shape] if self.image_shape else [])


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A validated /v1/predict request."""

    x: list  # rows of n_inputs floats
    top_k: int


@dataclasses.dataclass(frozen=True)
class InferRequest:
    """A validated OIP infer request."""

    x: list  # rows of n_inputs floats
    request_id: str
    outputs: tuple


def parse_json(body):
    """The JSON object in `body`, or BadRequestError saying why it is not one."""
    if not body:
        raise BadRequestError("the request body is empty; send a JSON object.")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        hint = ""
        if b"NaN" in body or b"Infinity" in body or "infinity" in str(err):
            hint = " NaN and infinite numbers are not JSON and not valid pixel values."
        raise BadRequestError(f"the request body is not valid JSON: {err}.{hint}") from None
    if not isinstance(doc, dict):
        raise BadRequestError(
            f"the request body must be a JSON object, not {_json_type(doc)}.")
    return doc


def parse_predict(doc, spec):
    """A /v1/predict request body -> PredictRequest."""
    _only_fields(doc, ("instances", "top_k"), "the request")
    if "instances" not in doc:
        raise BadRequestError(
            f"'instances' is missing: send {{\"instances\": [[{spec.n_inputs} pixel levels], "
            "...]}.")
    instances = doc["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequestError(
            f"'instances' must be a non-empty array of images, got {_describe(instances)}.")
    if len(instances) > contract.MAX_INSTANCES:
        raise BadRequestError(
            f"'instances' has {len(instances)} images; at most {contract.MAX_INSTANCES} per "
            "request.")
    top_k = doc.get("top_k", contract.DEFAULT_TOP_K)
    n_labels = len(spec.labels)
    if isinstance(top_k, float) and top_k.is_integer() and 1 <= top_k <= n_labels:
        top_k = int(top_k)  # 3.0 is an integer in JSON Schema (1e300 is one too: refused below)
    if not _is_int(top_k) or not 1 <= top_k <= n_labels:
        raise BadRequestError(f"'top_k' must be an integer from 1 to {n_labels}, got "
                              f"{_describe(top_k)}.")
    try:
        flat, shape = _flatten(instances, "instances")
        uniform = shape[1:] in spec.row_shapes()
    except BadRequestError:
        uniform = False
    if not uniform:  # images may come in different forms: check each on its own
        flat = []
        for i, instance in enumerate(instances):
            where = f"instances[{i}]"
            if not isinstance(instance, list):
                raise BadRequestError(f"{where} must be {_shape_words(spec)}, got "
                                      f"{_describe(instance)}.")
            values, shape = _flatten(instance, where)
            if shape not in spec.row_shapes():
                raise BadRequestError(f"{where} must be {_shape_words(spec)}; got shape "
                                      f"{list(shape)}.")
            flat.extend(values)
    x = _pixels(flat, len(instances), spec, "instances")
    return PredictRequest(x=x, top_k=top_k)


def parse_infer(doc, spec, binary=None):
    """An OIP v2 infer request body -> InferRequest.

    `binary` is the part of the body after the JSON when the request uses the
    binary tensor data extension (`binary_data`), None when it does not.
    """
    _only_fields(doc, ("id", "parameters", "inputs", "outputs"), "the request")
    request_id = doc.get("id")
    if "id" not in doc:
        request_id = uuid.uuid4().hex
    elif not isinstance(request_id, str):
        raise BadRequestError(f"'id' must be a string, got {_describe(request_id)}.")
    parameters = _optional_object(doc, "parameters", "the request")
    binary_output = _optional_bool(parameters, "binary_data_output", "parameters")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadRequestError(
            f"'inputs' must be an array of exactly one tensor (input '{spec.input_name}'), "
            f"got {_describe(inputs)}.")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise BadRequestError(f"inputs[0] must be an object, got {_describe(tensor)}.")
    x = _input_tensor(tensor, spec, binary)
    return InferRequest(x=x, request_id=request_id,
                        outputs=_requested_outputs(doc, binary_output))


def _input_tensor(tensor, spec, binary):
    _only_fields(tensor, ("name", "shape", "datatype", "data", "parameters"), "inputs[0]")
    parameters = _optional_object(tensor, "parameters", "inputs[0]")
    size = parameters.get("binary_data_size")
    for field in ("name", "shape", "datatype") + (("data",) if size is None else ()):
        if field not in tensor:
            raise BadRequestError(f"inputs[0].{field} is missing.")
    name, datatype, shape = tensor["name"], tensor["datatype"], tensor["shape"]
    if name != spec.input_name:
        raise BadRequestError(f"unknown input {_describe(name)}: model '{spec.model_name}' "
                              f"has one input, '{spec.input_name}'.")
    if not isinstance(datatype, str):
        raise BadRequestError(f"inputs[0].datatype must be a string, got {_describe(datatype)}; "
                              f"use one of {', '.join(ACCEPTED_DATATYPES)}.")
    if datatype in _REJECTED_DATATYPES:
        raise BadRequestError(
            f"inputs[0].datatype {datatype} is not accepted: "
            f"{_REJECTED_DATATYPES[datatype].format(max=spec.max_level)}. Use one of "
            f"{', '.join(ACCEPTED_DATATYPES)}.")
    if datatype not in ACCEPTED_DATATYPES:
        raise BadRequestError(f"inputs[0].datatype {_describe(datatype)} is not an OIP "
                              f"datatype this model takes; use one of "
                              f"{', '.join(ACCEPTED_DATATYPES)}.")
    if not isinstance(shape, list) or not shape or not all(_is_int(d) and d >= 0 for d in shape):
        raise BadRequestError(
            f"inputs[0].shape must be an array of non-negative integers, got {_describe(shape)}.")
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
    return _pixels(flat, shape[0], spec, "inputs[0].data")


def _binary_input(tensor, size, binary, datatype, count):
    if not _is_int(size) or size < 0:
        raise BadRequestError(f"inputs[0].parameters.binary_data_size must be a byte count, "
                              f"got {_describe(size)}.")
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
        raise BadRequestError(f"inputs[0].data must be an array, got {_describe(data)}.")
    flat, data_shape = _flatten(data, "inputs[0].data")
    if len(data_shape) > 1 and list(data_shape) != shape:
        raise BadRequestError(f"inputs[0].data is nested as {list(data_shape)} but shape says "
                              f"{shape}; nest it as the shape or send it flat.")
    if len(flat) != count:
        raise BadRequestError(f"inputs[0].data has {len(flat)} values; shape {shape} needs "
                              f"{count}.")
    if datatype in _INTEGER_TYPES:
        for i, value in enumerate(flat):
            if not _is_int(value) and not (isinstance(value, float) and value.is_integer()):
                raise BadRequestError(f"inputs[0].data[{i}] is {value!r}, not an integer, but "
                                      f"datatype is {datatype}.")
    return flat


def _requested_outputs(doc, binary_output):
    """((name, binary), ...) of the outputs to send, in request order, without repeats."""
    if "outputs" not in doc:
        return tuple((name, binary_output) for name in contract.OUTPUT_NAMES)
    outputs = doc["outputs"]
    if not isinstance(outputs, list) or not outputs:
        raise BadRequestError(f"'outputs' must be a non-empty array of {{\"name\": ...}} objects, "
                              f"got {_describe(outputs)}.")
    chosen = {}
    for i, item in enumerate(outputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequestError(f"outputs[{i}] must be an object with a string 'name'.")
        _only_fields(item, ("name", "parameters"), f"outputs[{i}]")
        parameters = _optional_object(item, "parameters", f"outputs[{i}]")
        if item["name"] not in contract.OUTPUT_NAMES:
            raise BadRequestError(f"outputs[{i}].name {item['name']!r} is not an output "
                                  f"of this model; outputs: {', '.join(contract.OUTPUT_NAMES)}.")
        if parameters.get("classification") not in (None, 0):
            raise BadRequestError(f"outputs[{i}].parameters.classification is not supported; "
                                  f"ask for outputs '{contract.OUTPUT_PROBABILITIES}' and "
                                  f"'{contract.OUTPUT_LABEL}' instead.")
        binary = _optional_bool(parameters, "binary_data", f"outputs[{i}].parameters")
        chosen.setdefault(item["name"], binary or binary_output)
    return tuple(chosen.items())


def _flatten(data, where):
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
        raise BadRequestError(f"{where} is nested {depth} deep; images are at most "
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
                raise BadRequestError(f"{where} holds {_describe(value)}; pixel values must be "
                                      "numbers.")
        flat.extend(node)
        return
    if len(node) != shape[level]:
        raise BadRequestError(f"{where} is ragged: an array at depth {level} has {len(node)} "
                              f"items, another {shape[level]}.")
    for child in node:
        if not isinstance(child, list):
            raise BadRequestError(f"{where} mixes arrays and {_describe(child)} at depth "
                                  f"{level + 1}.")
        _collect(child, level + 1, depth, shape, flat, where)


def _pixels(flat, rows, spec, where):
    """Flat pixel values -> `rows` lists of n_inputs floats, within the model's levels.

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
            raise BadRequestError(f"{where} holds a number too large for a pixel value; pixel "
                                  f"values are levels from 0 to {top}.") from None
        total = sum(row)
        if math.isnan(total) or not (min(row) >= 0.0 and max(row) <= top):
            col = next(c for c, v in enumerate(row) if not 0.0 <= v <= top)
            raise BadRequestError(
                f"{where}: image {r}, pixel {col} is {row[col]!r}; pixel values must be "
                f"levels from 0 (background) to {top} (full ink).")
        out.append(row)
    return out


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _only_fields(doc, allowed, where):
    for key in doc:
        if key not in allowed:
            raise BadRequestError(f"{where} has an unknown field {key!r}; fields: "
                                  f"{', '.join(allowed)}.")


def _optional_object(doc, key, where):
    if key not in doc:
        return {}
    value = doc[key]
    if not isinstance(value, dict):
        raise BadRequestError(f"{where}.{key} must be an object, got {_describe(value)}.")
    return value


def _optional_bool(doc, key, where):
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise BadRequestError(f"{where}.{key} must be true or false, got {_describe(value)}.")
    return value


def _shape_words(spec):
    words = f"an array of {spec.n_inputs} pixel levels"
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


def _describe(value):
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

def predict_body(spec, version, proba, top_k):
    """The /v1/predict result for probabilities `proba` (N lists of n_classes floats)."""
    labels = spec.labels
    classes = range(len(labels))
    predictions = []
    for row in proba:
        # Stable: equal probabilities keep label order (as Model.topk).
        best = sorted(classes, key=row.__getitem__, reverse=True)[:top_k]
        ranked = [{"label": labels[c], "probability": row[c]} for c in best]
        predictions.append({"label": ranked[0]["label"], "top_k": ranked})
    return {
        "format": contract.RESULTS_FORMAT,
        "api_version": contract.API_VERSION,
        "model": {"name": spec.model_name, "version": version},
        "predictions": predictions,
    }


def infer_body(spec, version, request, proba):
    """The OIP infer response for `request` with probabilities `proba`: (JSON doc, binary).

    Outputs asked for in binary carry `parameters.binary_data_size` instead of
    `data`, and their bytes are in `binary` in output order (b"" when none is).
    """
    outputs = []
    chunks = []
    n_classes = len(spec.labels)
    for name, binary in request.outputs:
        if name == contract.OUTPUT_PROBABILITIES:
            output = {"name": name, "datatype": "FP32", "shape": [len(proba), n_classes]}
            data = [v for row in proba for v in row]
        else:
            classes = range(n_classes)
            output = {"name": name, "datatype": "BYTES", "shape": [len(proba)]}
            data = [spec.labels[max(classes, key=row.__getitem__)] for row in proba]
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
        "parameters": {"api_version": contract.API_VERSION, "format": contract.RESULTS_FORMAT},
        "outputs": outputs,
    }
    return doc, b"".join(chunks)
