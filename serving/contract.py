"""The service's public contract: versions, names, limits and the OpenAPI document.

The document is built from the runtime's routes, the served model's input
(`handler.InputSpec`) and the handler's `Contract` (its task endpoint), so a
model's checked-in copy (e.g. services/iris/openapi.json) changes when the
API or the model's interface does. Its tests fail when the served documents
and the checked-in ones differ; regenerate them with the model's
`contract.update` target (serving/update_contract.py).
"""

import json

# The API version of a model whose Contract names none (an OIP-only handler):
# each model's own is its Contract's `api_version`. Sent as X-API-Version.
API_VERSION = "1.0"
# Version of the results format (OIP response parameters, a task's `format` field).
RESULTS_FORMAT = "1.0"

MODEL_VERSION_HEADER = "x-model-version"
API_VERSION_HEADER = "x-api-version"

OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_LABEL = "label"
OUTPUT_NAMES = (OUTPUT_PROBABILITIES, OUTPUT_LABEL)
MAX_INSTANCES = 1024

# The HTML reference generated from openapi.json (a model's api:docs target).
DOCS_PATH = "/docs"

# Groups of operations (OpenAPI tags): sections of the docs, modules of the SDK.
TAG_OIP = "oip"
TAG_TASK = "task"
TAG_SERVICE = "service"

OPENAPI_FILE = "openapi.json"
RESULTS_SCHEMA_FILE = "results.schema.json"

SHA256_PATTERN = "^[0-9a-f]{64}$"
_OIP_INTEGER_DATATYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                          "INT64")
_OIP_FLOAT_DATATYPES = ("FP16", "FP32", "FP64")


def render(doc):
    """The canonical text of a contract document (what is checked in and served)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def openapi(spec, model, task_path=None, results_path=None):
    """The OpenAPI 3.0 document of the service serving `spec` (handler.InputSpec) with
    the handler's `model` (handler.Contract), its task at `task_path` and the task's
    results schema at `results_path`."""
    task = model.task if task_path else None
    versioned = "/versions/{model_version}"
    text = getattr(spec, "dimension", None) is not None
    tensor_schemas, infer_request = _text_infer_request(spec) if text else _infer_request(spec)
    output_names = [spec.output_name] if text else list(OUTPUT_NAMES)
    if text:
        data_about = f"FP32: {spec.dimension} numbers per {spec.item}, row-major."
        data_item = {"type": "number"}
    else:
        data_about = "FP32: probabilities; BYTES: labels."
        data_item = {"oneOf": [{"type": "number"}, {"type": "string"}]}
    output_fields = {
        "datatype": {"type": "string", "enum": ["FP32"] if text else ["FP32", "BYTES"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "data": {"type": "array", "description": data_about, "items": data_item}}
    # operationId names the function of the generated client, tags its module.
    paths = {
        "/v2/health/live": {"get": _get("Liveness (OIP)", "Live", not_ready=True,
                                        operation=("server_live", TAG_OIP))},
        "/v2/health/ready": {"get": _get("Readiness (OIP)", "Ready", not_ready=True,
                                         operation=("server_ready", TAG_OIP))},
        "/v2": {"get": _get("Server metadata (OIP)", "ServerMetadata",
                            operation=("server_metadata", TAG_OIP))},
    }
    if task:
        paths[task_path] = {"post": _post(task.summary, task.request[0], task.response[0],
                                          operation=(task.operation, TAG_TASK))}
    paths["/openapi.json"] = {"get": _get("This document", "AnyObject",
                                          operation=("openapi", TAG_SERVICE))}
    if task and results_path:
        paths[results_path] = {"get": _get(f"JSON Schema of {task_path} results", "AnyObject",
                                           operation=("results_schema", TAG_TASK))}
    paths["/metrics"] = {"get": _metrics()}
    paths[DOCS_PATH] = {"get": _docs()}
    for prefix, params, infix in (
            ("/v2/models/{model_name}", ["ModelName"], "model"),
            ("/v2/models/{model_name}" + versioned, ["ModelName", "ModelVersion"],
             "model_version")):
        refs = [{"$ref": f"#/components/parameters/{p}"} for p in params]
        paths[prefix] = {"get": _get("Model metadata (OIP)", "ModelMetadata", refs,
                                     not_found=True, not_ready=True,
                                     operation=(f"{infix}_metadata", TAG_OIP))}
        paths[prefix + "/ready"] = {"get": _get("Model readiness (OIP)", "ModelReady", refs,
                                                not_found=True, not_ready=True,
                                                operation=(f"{infix}_ready", TAG_OIP))}
        infer = _post("Inference (OIP)", "InferRequest", "InferResponse", refs,
                      not_found=True, operation=(f"{infix}_infer", TAG_OIP))
        # Binary tensor data extension: outputs asked for in binary follow the JSON.
        ok = infer["responses"]["200"]
        ok["headers"]["Inference-Header-Content-Length"] = {
            "$ref": "#/components/headers/InferenceHeaderContentLength"}
        ok["content"]["application/octet-stream"] = {
            "schema": {"type": "string", "format": "binary", "description": (
                "With outputs asked for in binary: the JSON response (its length in "
                "Inference-Header-Content-Length), then those outputs' bytes.")}}
        paths[prefix + "/infer"] = {"post": infer}
    # Links: where a client (and schemathesis' stateful phase) finds the model's
    # name and version for the other model routes.
    from_metadata = {"model_name": "$response.body#/name",
                     "model_version": "$response.body#/versions/0"}
    paths["/v2/models/{model_name}"]["get"]["responses"]["200"]["links"] = {
        f"{operation}": {"operationId": operation,
                         "parameters": {k: v for k, v in from_metadata.items()
                                        if k == "model_name" or "version" in operation}}
        for operation in ("model_ready", "model_infer", "model_version_metadata",
                          "model_version_ready", "model_version_infer")}
    examples = [("/v2/models/{model_name}/infer", _infer_example(spec, model)),
                ("/v2/models/{model_name}" + versioned + "/infer", _infer_example(spec, model))]
    if task:
        examples.insert(0, (task_path, task.example))
    for path, example in examples:
        paths[path]["post"]["requestBody"]["content"]["application/json"]["example"] = example
    schemas = {
        "Error": _object({"error": {"type": "string", "description": "What is wrong."},
                          **_VERSIONS}, ["error"]),
        "AnyObject": {"type": "object"},
        "Live": _object({"live": {"type": "boolean"}, **_VERSIONS}, ["live"]),
        "Ready": _object({"ready": {"type": "boolean"}, **_VERSIONS}, ["ready"]),
        "ServerMetadata": _object({
            "name": {"type": "string"}, "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}}, **_VERSIONS},
            ["name", "version", "extensions"]),
        "TensorMetadata": _object({
            "name": {"type": "string"}, "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}}},
            ["name", "datatype", "shape"]),
        "ModelMetadata": _object({
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/TensorMetadata"}},
            "outputs": {"type": "array",
                        "items": {"$ref": "#/components/schemas/TensorMetadata"}},
            "labels": {"type": "array", "items": {"type": "string"}},
            **_VERSIONS}, ["name", "versions", "platform", "inputs", "outputs"]),
        "ModelReady": _object({"name": {"type": "string"}, "ready": {"type": "boolean"},
                               **_VERSIONS}, ["name", "ready"]),
        **(dict((task.request, task.response)) if task else {}),
        "InferRequest": infer_request,
        **tensor_schemas,
        "InferResponse": _object({
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": _object({
                "name": {"type": "string", "enum": output_names},
                **output_fields},
                ["name", "datatype", "shape", "data"])},
        }, ["model_name", "id", "outputs"]),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{spec.model_name} inference service",
            "version": model.api_version or API_VERSION,
            "description": (
                model.description + " Every response carries X-Model-Version (sha256 "
                "of the model artifact) and X-API-Version; errors are {\"error\": \"...\"}."),
        },
        "tags": [
            {"name": TAG_OIP, "description": "Open Inference Protocol v2 (KServe/Triton REST): "
                                             "health, metadata, inference."},
            *([{"name": TAG_TASK, "description": task.about}] if task else []),
            {"name": TAG_SERVICE, "description": "The contract, its docs and metrics."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "ModelName": {"name": "model_name", "in": "path", "required": True,
                              "schema": {"type": "string"},
                              "example": spec.model_name},
                "ModelVersion": {"name": "model_version", "in": "path", "required": True,
                                 "schema": {"type": "string"},
                                 "description": "sha256 of the model artifact."},
            },
            "headers": {
                "ApiVersion": {"description": "Version of this API.", "required": True,
                               "schema": {"type": "string"}},
                "ModelVersion": {"description": "sha256 of the served model artifact.",
                                 "required": True,
                                 "schema": {"type": "string", "pattern": SHA256_PATTERN}},
                "RetryAfter": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "integer"}},
                "InferenceHeaderContentLength": {
                    "description": "Binary tensor data extension: the length of the JSON "
                                   "part of the body; sent when outputs are in binary.",
                    "schema": {"type": "integer", "minimum": 0}},
            },
        },
    }


_VERSIONS = {"api_version": {"type": "string"},
             "model_version": {"type": "string", "pattern": SHA256_PATTERN}}


def _infer_example(spec, model):
    if getattr(spec, "dimension", None) is not None:
        texts = model.example_row or ["A text to embed."]
        return {"id": "example-1",
                "inputs": [{"name": spec.input_name, "shape": [len(texts)],
                            "datatype": "BYTES", "data": texts}]}
    row = model.example_row or [0] * spec.n_inputs
    return {"id": "example-1",
            "inputs": [{"name": spec.input_name, "shape": [1, len(row)],
                        "datatype": model.example_datatype, "data": row}],
            "outputs": [{"name": OUTPUT_LABEL}, {"name": OUTPUT_PROBABILITIES}]}


def _object(properties, required):
    return {"type": "object", "required": required, "properties": properties}


def row_forms(spec, item):
    """The JSON Schema forms of one row of `spec`'s input: flat (n_inputs items), and
    nested as the row shape when the spec has one; `item` is each number's schema."""
    forms = [{"type": "array", "minItems": spec.n_inputs, "maxItems": spec.n_inputs,
              "items": item}]
    if spec.image_shape:
        nested = item
        for dim in reversed(spec.image_shape):
            nested = {"type": "array", "minItems": dim, "maxItems": dim, "items": nested}
        forms.append(nested)
    return forms


def _infer_request(spec):
    """The JSON form of an infer request, as exactly as JSON Schema can say it:
    ({name: tensor schema}, request schema).

    One rule is beyond JSON Schema and only in the descriptions: `data` holds
    the product of `shape` values, flat or nested exactly as `shape`.
    """
    def tensor(datatypes, value):
        rows = row_forms(spec, value)
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string", "enum": [spec.input_name]},
                "shape": {"type": "array", "minItems": 1 + 1,
                          "maxItems": 1 + max(1, len(spec.image_shape)),
                          "description": shape_words,
                          "items": {"type": "integer", "minimum": 1,
                                    "maximum": max(MAX_INSTANCES, spec.n_inputs)}},
                "datatype": {"type": "string", "enum": list(datatypes)},
                "parameters": {"type": "object"},
                "data": {"description": "Row-major values: flat, or nested exactly as the "
                                        "shape (every image alike); as many as the shape's "
                                        "product.",
                         "oneOf": [
                             {"type": "array", "minItems": spec.n_inputs,
                              "maxItems": spec.n_inputs * MAX_INSTANCES, "items": value},
                             *({"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                                "items": row} for row in rows)]},
            },
        }
    shape_words = (f"[N, {spec.n_inputs}]"
                   + (f" or [N, {', '.join(map(str, spec.image_shape))}]"
                      if spec.image_shape else "")
                   + f", 1 <= N <= {MAX_INSTANCES}.")
    level = {"type": "number", "minimum": 0, "maximum": spec.max_level}
    integer_level = {"type": "integer", "minimum": 0, "maximum": spec.max_level}
    tensors = {"IntegerTensor": tensor(_OIP_INTEGER_DATATYPES, integer_level),
               "FloatTensor": tensor(_OIP_FLOAT_DATATYPES, level)}
    return tensors, {
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs"],
        "description": (
            "The binary tensor data extension is also accepted: the JSON part's length in "
            "the Inference-Header-Content-Length request header, the tensor's bytes "
            "(little-endian, row-major) after it, their count in the input's "
            "parameters.binary_data_size and no data. Outputs asked for with binary_data "
            "(or the request's binary_data_output) come back the same way, as "
            "application/octet-stream with the Inference-Header-Content-Length response "
            "header. A body without Content-Type is read as JSON."),
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {
                "binary_data_output": {"type": "boolean", "description":
                                       "Every output in binary (unless it says otherwise)."}}},
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"oneOf": [
                {"$ref": "#/components/schemas/IntegerTensor"},
                {"$ref": "#/components/schemas/FloatTensor"}]}},
            "outputs": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": {"type": "string", "enum": list(OUTPUT_NAMES)},
                               "parameters": {"type": "object", "properties": {
                                   "binary_data": {"type": "boolean", "description":
                                                   "This output in binary."}}}},
            }},
        },
    }


def _text_infer_request(spec):
    """The JSON form of a text encoder's infer request: ({name: tensor schema}, request)."""
    text = {"type": "string", "maxLength": spec.max_chars}
    tensor = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "enum": [spec.input_name]},
            "shape": {"type": "array", "minItems": 1, "maxItems": 2,
                      "description": f"[N] or [N, 1], 1 <= N <= {MAX_INSTANCES}: one "
                                     f"{spec.item} per row.",
                      "items": {"type": "integer", "minimum": 1, "maximum": MAX_INSTANCES}},
            "datatype": {"type": "string", "enum": ["BYTES"]},
            "parameters": {"type": "object"},
            "data": {"description": f"The {spec.item}s (UTF-8), flat or one per row; as many "
                                    "as the shape says.",
                     "oneOf": [
                         {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                          "items": text},
                         {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                          "items": {"type": "array", "minItems": 1, "maxItems": 1,
                                    "items": text}}]},
        },
    }
    return {"BytesTensor": tensor}, {
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs"],
        "description": (
            "The binary tensor data extension is also accepted: the JSON part's length in "
            "the Inference-Header-Content-Length request header, the texts after it (each a "
            "4-byte little-endian length, then its UTF-8 bytes), their byte count in the "
            "input's parameters.binary_data_size and no data. Outputs asked for with "
            "binary_data (or the request's binary_data_output) come back as little-endian "
            "float32, as application/octet-stream with the Inference-Header-Content-Length "
            "response header. A body without Content-Type is read as JSON."),
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object", "properties": {
                "binary_data_output": {"type": "boolean", "description":
                                       "Every output in binary (unless it says otherwise)."}}},
            "inputs": {"type": "array", "minItems": 1, "maxItems": 1,
                       "items": {"$ref": "#/components/schemas/BytesTensor"}},
            "outputs": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": {"type": "string", "enum": [spec.output_name]},
                               "parameters": {"type": "object", "properties": {
                                   "binary_data": {"type": "boolean", "description":
                                                   "This output in binary."}}}},
            }},
        },
    }


def _headers(retry=False):
    headers = {"X-API-Version": {"$ref": "#/components/headers/ApiVersion"},
               "X-Model-Version": {"$ref": "#/components/headers/ModelVersion"}}
    if retry:
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    return headers


def _json(schema, description, retry=False):
    return {"description": description, "headers": _headers(retry),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _operation_fields(operation):
    operation_id, tag = operation
    return {"operationId": operation_id, "tags": [tag]}


def _get(summary, schema, parameters=None, not_found=False, not_ready=False, operation=None):
    responses = {"200": _json(schema, "OK")}
    if not_found:
        responses["404"] = _json("Error", "No such model or version")
    if not_ready:
        responses["503"] = _json(schema if schema in ("Live", "Ready", "ModelReady") else "Error",
                                 "Not live or not ready")
    responses["405"] = _json("Error", "Method not allowed")
    result = {"summary": summary, **_operation_fields(operation), "responses": responses}
    if parameters:
        result["parameters"] = parameters
    return result


def _post(summary, request_schema, response_schema, parameters=None, not_found=False,
          operation=None):
    responses = {
        "200": _json(response_schema, "OK"),
        "400": _json("Error", "Invalid request: JSON, fields, shape, datatype or values"),
        "405": _json("Error", "Method not allowed"),
        "413": _json("Error", "Request body too large"),
        "415": _json("Error", "Content-Type is neither JSON nor absent"),
        "503": _json("Error", "Not ready, or overloaded (then Retry-After is set)", retry=True),
    }
    if not_found:
        responses["404"] = _json("Error", "No such model or version")
    result = {
        "summary": summary,
        **_operation_fields(operation),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{request_schema}"}}}},
        "responses": dict(sorted(responses.items())),
    }
    if parameters:
        result["parameters"] = parameters
    return result


def _docs():
    responses = {
        "200": {"description": "OK", "headers": _headers(),
                "content": {"text/html": {"schema": {"type": "string"}}}},
        "404": _json("Error", "This server was built without its docs"),
        "405": _json("Error", "Method not allowed")}
    return {"summary": "API reference: this document as HTML, for people",
            **_operation_fields(("docs", TAG_SERVICE)), "responses": responses}


def _metrics():
    responses = {
        "200": {"description": "OK", "headers": _headers(),
                "content": {"text/plain": {"schema": {"type": "string"}}}},
        "405": _json("Error", "Method not allowed")}
    return {"summary": "Prometheus metrics", **_operation_fields(("metrics", TAG_SERVICE)),
            "responses": responses}
