"""The service's public contract: versions, names, limits, the OpenAPI document
and the JSON Schema of the /v1/predict results.

The documents are built from the served model's metadata, so the checked-in
copies (`openapi.json`, `results.schema.json` beside this file) change when
the API or the model's interface does. Tests fail when the served documents
and the checked-in ones differ; regenerate them with

    bazel run //services/digits:update_contract
"""

import json

# Version of the HTTP API (routes, fields, error shape). Sent as X-API-Version.
API_VERSION = "1.0"
# Version of the /v1/predict results format (`format` field, results.schema.json).
RESULTS_FORMAT = "1.0"

MODEL_VERSION_HEADER = "x-model-version"
API_VERSION_HEADER = "x-api-version"

INPUT_NAME = "pixels"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_LABEL = "label"
OUTPUT_NAMES = (OUTPUT_PROBABILITIES, OUTPUT_LABEL)
PLATFORM = "modelship_cython"
SERVER_NAME = "modelship-digits"

MAX_INSTANCES = 1024
DEFAULT_TOP_K = 3

# The HTML reference generated from openapi.json (services/digits/api:docs).
DOCS_PATH = "/docs"

# Groups of operations (OpenAPI tags): sections of the docs, modules of the SDK.
TAG_OIP = "oip"
TAG_TASK = "task"
TAG_SERVICE = "service"

OPENAPI_FILE = "openapi.json"
RESULTS_SCHEMA_FILE = "results.schema.json"

_SHA256_PATTERN = "^[0-9a-f]{64}$"
_OIP_INTEGER_DATATYPES = ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                          "INT64")
_OIP_FLOAT_DATATYPES = ("FP16", "FP32", "FP64")


def render(doc):
    """The canonical text of a contract document (what is checked in and served)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def results_schema(spec):
    """JSON Schema (2020-12) of a /v1/predict response body."""
    body = _results_body_schema(spec)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:modelship:{spec.model_name}:results:{RESULTS_FORMAT}",
        "title": f"{spec.model_name} prediction results, format {RESULTS_FORMAT}",
        **body,
    }


def _results_body_schema(spec):
    labels = list(spec.labels)
    ranked = {
        "type": "object",
        "additionalProperties": False,
        "required": ["label", "probability"],
        "properties": {
            "label": {"type": "string", "enum": labels},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["format", "api_version", "model", "predictions"],
        "properties": {
            "format": {"type": "string", "enum": [RESULTS_FORMAT],
                       "description": "Version of this results format."},
            "api_version": {"type": "string"},
            "model": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "version"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string", "pattern": _SHA256_PATTERN,
                                "description": "sha256 of the model artifact."},
                },
            },
            "predictions": {
                "type": "array",
                "description": "One entry per instance, in request order.",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["label", "top_k"],
                    "properties": {
                        "label": {"type": "string", "enum": labels,
                                  "description": "The most probable label."},
                        "top_k": {"type": "array", "minItems": 1, "maxItems": len(labels),
                                  "description": "Most probable labels, highest first.",
                                  "items": ranked},
                    },
                },
            },
        },
    }


def openapi(spec):
    """The OpenAPI 3.0 document of the service serving `spec` (protocol.InputSpec)."""
    level = {"type": "number", "minimum": 0, "maximum": spec.max_level}
    image_flat = {"type": "array", "minItems": spec.n_inputs, "maxItems": spec.n_inputs,
                  "items": level}
    image_forms = [image_flat]
    if spec.image_shape:
        nested = level
        for dim in reversed(spec.image_shape):
            nested = {"type": "array", "minItems": dim, "maxItems": dim, "items": nested}
        image_forms.append(nested)
    versioned = "/versions/{model_version}"
    tensor_schemas, infer_request = _infer_request(spec)
    # operationId names the function of the generated client, tags its module.
    paths = {
        "/v2/health/live": {"get": _get("Liveness (OIP)", "Live", not_ready=True,
                                        operation=("server_live", TAG_OIP))},
        "/v2/health/ready": {"get": _get("Readiness (OIP)", "Ready", not_ready=True,
                                         operation=("server_ready", TAG_OIP))},
        "/v2": {"get": _get("Server metadata (OIP)", "ServerMetadata",
                            operation=("server_metadata", TAG_OIP))},
        "/v1/predict": {"post": _post(
            "Top-k labels of each image (task API)", "PredictRequest", "PredictResults",
            operation=("predict", TAG_TASK))},
        "/openapi.json": {"get": _get("This document", "AnyObject",
                                      operation=("openapi", TAG_SERVICE))},
        "/v1/results.schema.json": {"get": _get("JSON Schema of /v1/predict results",
                                                "AnyObject",
                                                operation=("results_schema", TAG_TASK))},
        "/metrics": {"get": _metrics()},
        DOCS_PATH: {"get": _docs()},
    }
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
    for path, example in (("/v1/predict", {"instances": [_EXAMPLE_IMAGE], "top_k": 2}),
                          ("/v2/models/{model_name}/infer", _infer_example(spec)),
                          ("/v2/models/{model_name}" + versioned + "/infer",
                           _infer_example(spec))):
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
        "PredictRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["instances"],
            "properties": {
                "instances": {"type": "array", "minItems": 1, "maxItems": MAX_INSTANCES,
                              "description": f"Images: {spec.n_inputs} pixel levels each "
                                             f"(0..{spec.max_level}), flat or as rows.",
                              "items": {"oneOf": image_forms}},
                "top_k": {"type": "integer", "minimum": 1, "maximum": len(spec.labels),
                          "default": DEFAULT_TOP_K},
            },
        },
        "PredictResults": _results_body_schema(spec),
        "InferRequest": infer_request,
        **tensor_schemas,
        "InferResponse": _object({
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": _object({
                "name": {"type": "string", "enum": list(OUTPUT_NAMES)},
                "datatype": {"type": "string", "enum": ["FP32", "BYTES"]},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "data": {"type": "array", "description": "FP32: probabilities; BYTES: labels.",
                         "items": {"oneOf": [{"type": "number"}, {"type": "string"}]}}},
                ["name", "datatype", "shape", "data"])},
        }, ["model_name", "id", "outputs"]),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{spec.model_name} inference service",
            "version": API_VERSION,
            "description": (
                f"Classifies {'x'.join(map(str, spec.image_shape)) or spec.n_inputs} images "
                f"of pixel levels 0..{spec.max_level}. Open Inference Protocol v2 REST under "
                "/v2, a task API under /v1. Every response carries X-Model-Version (sha256 "
                "of the model artifact) and X-API-Version; errors are {\"error\": \"...\"}."),
        },
        "tags": [
            {"name": TAG_OIP, "description": "Open Inference Protocol v2 (KServe/Triton REST): "
                                             "health, metadata, inference."},
            {"name": TAG_TASK, "description": "The task API: top-k labels per image."},
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
                                 "schema": {"type": "string", "pattern": _SHA256_PATTERN}},
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
             "model_version": {"type": "string", "pattern": _SHA256_PATTERN}}


# A real "0" of the training data (pixel levels 0..16), for the request examples.
_EXAMPLE_IMAGE = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
                  0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0,
                  2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


def _infer_example(spec):
    return {"id": "example-1",
            "inputs": [{"name": spec.input_name, "shape": [1, len(_EXAMPLE_IMAGE)],
                        "datatype": "UINT8", "data": _EXAMPLE_IMAGE}],
            "outputs": [{"name": OUTPUT_LABEL}, {"name": OUTPUT_PROBABILITIES}]}


def _object(properties, required):
    return {"type": "object", "required": required, "properties": properties}


def _infer_request(spec):
    """The JSON form of an infer request, as exactly as JSON Schema can say it:
    ({name: tensor schema}, request schema).

    One rule is beyond JSON Schema and only in the descriptions: `data` holds
    the product of `shape` values, flat or nested exactly as `shape`.
    """
    def tensor(datatypes, value):
        rows = [{"type": "array", "minItems": spec.n_inputs, "maxItems": spec.n_inputs,
                 "items": value}]
        if spec.image_shape:
            nested = value
            for dim in reversed(spec.image_shape):
                nested = {"type": "array", "minItems": dim, "maxItems": dim, "items": nested}
            rows.append(nested)
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
