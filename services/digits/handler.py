"""The digits model's handler: what the serving runtime (`serving/`) needs to serve it.

    MODELSHIP_HANDLER=services.digits.handler:DigitsHandler python3 -m serving

Loads the artifact of //models/digits:model once, predicts probabilities on a
batch of 64-pixel images, and reads and answers the task API,

    POST /v1/predict {"instances": [[64 pixel levels], ...], "top_k": 3}

whose results are described by results.schema.json. Everything else (HTTP,
OIP, health, batching, caching, metrics, configuration, the OpenAPI document)
is the runtime's.
"""

import os

from inference.model import Model
from models.digits import paths
from serving import contract, protocol
from serving.errors import BadRequestError
from serving.handler import Contract, Handler, InputSpec, Task

INPUT_NAME = "pixels"
# The digits API's version (its contract's info.version, X-API-Version): raise
# it with every change of services/digits/openapi.json (minor: additions; major:
# a break), with services/digits/api/version.bzl.
API_VERSION = "1.0"
DEFAULT_TOP_K = 3
# A real "0" of the training data (pixel levels 0..16), for the request examples.
EXAMPLE_IMAGE = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
                 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0,
                 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


class DigitsHandler(Handler):
    """Classifies 8x8 images of handwritten digits (levels 0..16) into "0".."9"."""

    name = "digits"
    server_name = "modelship-digits"
    platform = "modelship_cython"
    task_path = "/v1/predict"
    results_path = "/v1/results.schema.json"

    def __init__(self):
        self._model = None

    @classmethod
    def default_model_path(cls):
        """The artifact `bazel build //models/digits:model` makes, from this program's runfiles."""
        try:
            return paths.model_path()
        except FileNotFoundError:
            pass
        # `bazel run` may announce its runfiles by manifest only; this file is then at
        # <runfiles>/<workspace>/services/digits/handler.py. Not resolved: runfiles are
        # symlinks into the source tree, where the artifact does not exist.
        beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              paths.MODEL)
        if os.path.exists(beside):
            return os.path.normpath(beside)
        # Not under Bazel: name where it would be, so the error says what is missing.
        return os.path.join("bazel-bin", paths.MODEL)

    def load(self, path):
        model = Model.load(path)
        meta = model.metadata["input"]
        self.spec = InputSpec(
            input_name=meta.get("name") or INPUT_NAME, n_inputs=int(meta["shape"][0]),
            image_shape=tuple(meta.get("image_shape") or ()),
            max_level=int(meta["value_range"][1]), labels=tuple(model.labels),
            item="image", value="pixel")
        self.version = model.version
        self._model = model
        # The batcher calls `predict` once per batch: the kernel itself, no wrapper.
        self.predict = model.predict_proba  # pylint: disable=method-hidden

    def predict(self, rows):
        """Probabilities of `rows` (replaced by the kernel itself once loaded)."""
        return self._model.predict_proba(rows)

    def task_request(self, doc):
        """A /v1/predict request body -> (rows, top_k)."""
        spec = self.spec
        protocol.only_fields(doc, ("instances", "top_k"), "the request")
        if "instances" not in doc:
            raise BadRequestError(
                f"'instances' is missing: send {{\"instances\": [[{spec.n_inputs} pixel "
                "levels], ...]}.")
        instances = doc["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequestError(f"'instances' must be a non-empty array of images, got "
                                  f"{protocol.describe(instances)}.")
        if len(instances) > contract.MAX_INSTANCES:
            raise BadRequestError(
                f"'instances' has {len(instances)} images; at most {contract.MAX_INSTANCES} "
                "per request.")
        top_k = doc.get("top_k", DEFAULT_TOP_K)
        n_labels = len(spec.labels)
        if isinstance(top_k, float) and top_k.is_integer() and 1 <= top_k <= n_labels:
            top_k = int(top_k)  # 3.0 is an integer in JSON Schema (1e300 is one too: refused)
        if not protocol.is_int(top_k) or not 1 <= top_k <= n_labels:
            raise BadRequestError(f"'top_k' must be an integer from 1 to {n_labels}, got "
                                  f"{protocol.describe(top_k)}.")
        try:
            flat, shape = protocol.flatten(instances, "instances")
            uniform = shape[1:] in spec.row_shapes()
        except BadRequestError:
            uniform = False
        if not uniform:  # images may come in different forms: check each on its own
            flat = []
            for i, instance in enumerate(instances):
                where = f"instances[{i}]"
                if not isinstance(instance, list):
                    raise BadRequestError(f"{where} must be {protocol.shape_words(spec)}, got "
                                          f"{protocol.describe(instance)}.")
                values, shape = protocol.flatten(instance, where)
                if shape not in spec.row_shapes():
                    raise BadRequestError(f"{where} must be {protocol.shape_words(spec)}; got "
                                          f"shape {list(shape)}.")
                flat.extend(values)
        return protocol.to_rows(flat, len(instances), spec, "instances"), top_k

    def task_response(self, probabilities, options):
        """The /v1/predict result (results.schema.json): the top `options` labels per image."""
        top_k = options
        labels = self.spec.labels
        classes = range(len(labels))
        predictions = []
        for row in probabilities:
            # Stable: equal probabilities keep label order (as Model.topk).
            best = sorted(classes, key=row.__getitem__, reverse=True)[:top_k]
            ranked = [{"label": labels[c], "probability": row[c]} for c in best]
            predictions.append({"label": ranked[0]["label"], "top_k": ranked})
        return {
            "format": contract.RESULTS_FORMAT,
            "api_version": API_VERSION,
            "model": {"name": self.spec.model_name, "version": self.version},
            "predictions": predictions,
        }

    def contract(self):
        spec = self.spec
        return Contract(
            description=(
                f"Classifies {'x'.join(map(str, spec.image_shape)) or spec.n_inputs} images "
                f"of pixel levels 0..{spec.max_level}. Open Inference Protocol v2 REST under "
                "/v2, a task API under /v1."),
            task=Task(
                operation="predict", summary="Top-k labels of each image (task API)",
                about="The task API: top-k labels per image.",
                request=("PredictRequest", _predict_request_schema(spec)),
                response=("PredictResults", _results_body_schema(spec)),
                example={"instances": [EXAMPLE_IMAGE], "top_k": 2},
                results_schema=results_schema(spec)),
            api_version=API_VERSION,
            example_row=EXAMPLE_IMAGE, example_datatype="UINT8")


def results_schema(spec):
    """JSON Schema (2020-12) of a /v1/predict response body."""
    body = _results_body_schema(spec)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:modelship:{spec.model_name}:results:{contract.RESULTS_FORMAT}",
        "title": f"{spec.model_name} prediction results, format {contract.RESULTS_FORMAT}",
        **body,
    }


def _predict_request_schema(spec):
    level = {"type": "number", "minimum": 0, "maximum": spec.max_level}
    image_forms = contract.row_forms(spec, level)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["instances"],
        "properties": {
            "instances": {"type": "array", "minItems": 1, "maxItems": contract.MAX_INSTANCES,
                          "description": f"Images: {spec.n_inputs} pixel levels each "
                                         f"(0..{spec.max_level}), flat or as rows.",
                          "items": {"oneOf": image_forms}},
            "top_k": {"type": "integer", "minimum": 1, "maximum": len(spec.labels),
                      "default": DEFAULT_TOP_K},
        },
    }


def _results_body_schema(spec):
    """JSON Schema of a /v1/predict response body (without the document header)."""
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
            "format": {"type": "string", "enum": [contract.RESULTS_FORMAT],
                       "description": "Version of this results format."},
            "api_version": {"type": "string"},
            "model": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "version"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string", "pattern": contract.SHA256_PATTERN,
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
