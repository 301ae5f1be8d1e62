"""The flowers service: the flowers model on modelship's serving runtime.

    MODELSHIP_HANDLER=services.flowers.handler:FlowersHandler python3 -m serving

Rows of four measurements (millimetres, 0 to 100) in, a probability per
species out; over OIP at /v2/models/flowers/infer and at /v1/classify.
"""

import math

import serving
from inference import artifact
from models.flowers import paths
from serving import protocol

ARCHITECTURE = "nearest-centroid"
INPUT_NAME = "measurements"


class FlowersHandler(serving.Handler):
    """Nearest-centroid classifier of flowers by their measurements."""

    name = "flowers"
    task_path = "/v1/classify"

    def __init__(self):
        self.centroids = ()
        self.scale = 1.0

    @classmethod
    def default_model_path(cls):
        return paths.model_path()

    def load(self, path):
        loaded = artifact.read(path)
        header = loaded.header
        if header.get("architecture", {}).get("type") != ARCHITECTURE:
            raise ValueError(f"{path}: not a {ARCHITECTURE} model (architecture "
                             f"{header.get('architecture')!r}); build //models/flowers:model")
        labels = tuple(header["labels"])
        n_inputs = header["input"]["shape"][0]
        flat = list(loaded.tensors["centroids"])
        self.centroids = tuple(tuple(flat[i * n_inputs:(i + 1) * n_inputs])
                               for i in range(len(labels)))
        self.scale = 1.0 / (2.0 * loaded.tensors["variance"][0])
        self.version = loaded.version
        self.spec = serving.InputSpec(input_name=INPUT_NAME, n_inputs=n_inputs,
                                      max_level=header["input"]["value_range"][1],
                                      labels=labels, item="flower", value="measurement")

    def predict(self, rows):
        out = []
        for row in rows:
            scores = [-self.scale * sum((v - c) ** 2 for v, c in zip(row, centre))
                      for centre in self.centroids]
            top = max(scores)
            weights = [math.exp(score - top) for score in scores]
            total = sum(weights)
            out.append([w / total for w in weights])
        return out

    def task_request(self, doc):
        protocol.only_fields(doc, ("rows",), "the request")
        rows = doc.get("rows")
        if not isinstance(rows, list) or not rows:
            raise serving.BadRequestError("'rows' must be a non-empty array of flowers.")
        flat, shape = protocol.flatten(rows, "rows")
        if shape[1:] != (self.spec.n_inputs,):
            raise serving.BadRequestError(
                f"each flower must have {self.spec.n_inputs} measurements (sepal length, "
                f"sepal width, petal length, petal width, in mm).")
        return protocol.to_rows(flat, len(rows), self.spec, "rows"), None

    def task_response(self, probabilities, options):
        del options
        return {"species": [self.spec.labels[row.index(max(row))] for row in probabilities]}

    def contract(self):
        row = {"type": "array", "minItems": 4, "maxItems": 4,
               "items": {"type": "number", "minimum": 0, "maximum": 100}}
        return serving.Contract(
            description="Classifies flowers into three species from four measurements.",
            task=serving.Task(
                operation="classify", summary="The species of each flower",
                about="Rows of sepal length, sepal width, petal length and petal width, "
                      "in millimetres.",
                request=("ClassifyRequest", {"type": "object", "required": ["rows"],
                                             "properties": {"rows": {"type": "array",
                                                                     "items": row}}}),
                response=("ClassifyResponse", {
                    "type": "object", "required": ["species"],
                    "properties": {"species": {"type": "array",
                                               "items": {"type": "string"}}}}),
                example={"rows": [[50, 34, 15, 3]]}),
            example_row=[50, 34, 15, 3])
