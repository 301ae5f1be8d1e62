"""A text encoder that needs no model file, for the runtime's tests of TextSpec.

A text's "embedding" is four numbers: its length in characters, its words, its
vowels and its digits. `prepare` splits texts into words (its "tokens"), and a
row costs its words + 2, as a tokenizer's ids with [CLS] and [SEP] would.
It records every batch's rows and cost.
"""

import array
import hashlib

import serving
from serving import protocol


class ToyTextHandler(serving.Handler):
    """Counts characters, words, vowels and digits; `batches` lists (rows, cost)."""

    name = "toytext"
    task_path = "/v1/embed"
    max_batch_cost = 12

    def __init__(self):
        self.batches = []
        self.prepared = 0

    def load(self, path):
        del path
        self.version = hashlib.sha256(b"toy text encoder").hexdigest()
        self.spec = serving.TextSpec(dimension=4, input_name="text", output_name="embedding",
                                     max_chars=50)

    def prepare(self, rows):
        self.prepared += len(rows)
        return [(text, text.split()) for text in rows]

    def row_cost(self, row):
        return len(row[1]) + 2

    def predict(self, rows):
        self.batches.append((len(rows), sum(map(self.row_cost, rows))))
        return [array.array("f", [len(text), len(words), sum(c in "aeiou" for c in text),
                                  sum(c.isdigit() for c in text)]) for text, words in rows]

    def task_request(self, doc):
        protocol.only_fields(doc, ("texts",), "the request")
        texts = doc.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise serving.BadRequestError("'texts' must be a non-empty array of strings.")
        return texts, None

    def task_response(self, probabilities, options):
        del options
        return {"embeddings": [list(row) for row in probabilities]}

    def contract(self):
        return serving.Contract(
            description="Counts what is in a text.",
            task=serving.Task(
                operation="embed", summary="Four counts per text", about="The toy task.",
                request=("EmbedRequest", {"type": "object", "required": ["texts"],
                                          "properties": {"texts": {"type": "array"}}}),
                response=("EmbedResponse", {"type": "object"}),
                example={"texts": ["hello world"]}),
            api_version="2.1", example_row=["hello world"])
