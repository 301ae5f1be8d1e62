"""A complete handler that needs no model file, for the runtime's tests.

Rows of two numbers from 0 to 10 are "high" when their sum passes a threshold
(10, or the number in the file MODELSHIP_MODEL_PATH names), "low" otherwise.
It records the size of every batch it is given.
"""

import hashlib

import serving
from serving import protocol


class ToyHandler(serving.Handler):
    """Classifies pairs of numbers as "low" or "high"; `batches` lists batch sizes."""

    name = "toy"
    task_path = "/v1/classify"

    def __init__(self):
        self.threshold = None
        self.batches = []

    def load(self, path):
        if path is None:
            self.threshold = 10.0
        else:
            with open(path, encoding="utf-8") as text:
                self.threshold = float(text.read())
        self.version = hashlib.sha256(f"toy {self.threshold}".encode()).hexdigest()
        self.spec = serving.InputSpec(input_name="x", n_inputs=2, max_level=10,
                                      labels=("low", "high"))

    def predict(self, rows):
        self.batches.append(len(rows))
        return [[0.0, 1.0] if a + b > self.threshold else [1.0, 0.0] for a, b in rows]

    def task_request(self, doc):
        protocol.only_fields(doc, ("rows",), "the request")
        rows = doc.get("rows")
        if not isinstance(rows, list) or not rows:
            raise serving.BadRequestError("'rows' must be a non-empty array of rows.")
        flat, shape = protocol.flatten(rows, "rows")
        if shape[1:] != (self.spec.n_inputs,):
            raise serving.BadRequestError(f"each row must have {self.spec.n_inputs} numbers.")
        return protocol.to_rows(flat, len(rows), self.spec, "rows"), None

    def task_response(self, probabilities, options):
        del options
        return {"labels": [self.spec.labels[row.index(max(row))] for row in probabilities]}

    def contract(self):
        row = {"type": "array", "minItems": 2, "maxItems": 2,
               "items": {"type": "number", "minimum": 0, "maximum": 10}}
        return serving.Contract(
            description="Classifies pairs of numbers as low or high.",
            task=serving.Task(
                operation="classify", summary="Low or high, per row",
                about="The toy task.",
                request=("ClassifyRequest", {"type": "object", "required": ["rows"],
                                             "properties": {"rows": {"type": "array",
                                                                     "items": row}}}),
                response=("ClassifyResponse", {"type": "object"}),
                example={"rows": [[1, 2]]}),
            example_row=[1, 2])


class OipOnlyHandler(ToyHandler):
    """The toy model without a task endpoint: served over OIP only."""

    name = "oip-only"
    task_path = None
