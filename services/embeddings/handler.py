"""The sentence-embeddings service: all-MiniLM-L6-v2 (//models/minilm) on the serving runtime.

    MODELSHIP_HANDLER=services.embeddings.handler:EmbeddingsHandler python3 -m serving

Texts in, one unit vector of 384 numbers per text out (mean-pooled, L2
normalised: cosine similarity is a dot product), with the model version:

    POST /v1/embed {"texts": ["A sentence.", "Another one."]}
    POST /v2/models/minilm/infer      (OIP v2: a BYTES input "text", FP32 output "embedding")

Texts are tokenized when a request arrives (the Cython WordPiece tokenizer,
`inference/text/tokenizer.py`), only those the cache does not hold, and
batched by tokens: a batch holds at most MAX_BATCH_TOKENS tokens
(MODELSHIP_MAX_BATCH_COST overrides), so a few long texts do not hold up many
short ones behind a huge batch. The model keeps the first 256 tokens of a
text ([CLS] and [SEP] included); longer texts are embedded from that prefix,
as sentence-transformers does.
"""

import os

from inference import errors as inference_errors
from inference.text.encoder import SentenceEncoder
from models.minilm import paths
from serving import contract, protocol
from serving.errors import BadRequestError
from serving.handler import Contract, Handler, Task, TextSpec

INPUT_NAME = "text"
OUTPUT_NAME = "embedding"
# The embeddings API's version (its contract's info.version, X-API-Version):
# raise it with every change of services/embeddings/openapi.json (minor:
# additions; major: a break).
API_VERSION = "1.0"
# Longest text accepted, in characters (the model reads its first 256 tokens;
# the rest only costs tokenization time). A 1 MiB body holds ten of these.
MAX_CHARS = 100_000
# Tokens per batch: measured on the project's 2-core machine
# (docs/benchmarks.md, "Embeddings service").
MAX_BATCH_TOKENS = 4096
EXAMPLE_TEXTS = ["A man is playing a guitar.", "Someone plays an instrument."]


class EmbeddingsHandler(Handler):
    """Sentence embeddings of all-MiniLM-L6-v2: 384 numbers per text."""

    name = "minilm"
    server_name = "modelship-embeddings"
    platform = "modelship_cython"
    task_path = "/v1/embed"
    results_path = "/v1/results.schema.json"
    max_batch_cost = MAX_BATCH_TOKENS

    def __init__(self):
        self._encoder = None
        self._encode = None
        self._max_length = 0

    @classmethod
    def default_model_path(cls):
        """The artifact `bazel build //models/minilm:model` makes, from the runfiles."""
        try:
            return paths.model_path()
        except FileNotFoundError:
            pass
        beside = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              paths.MODEL)
        if os.path.exists(beside):
            return os.path.normpath(beside)
        return os.path.join("bazel-bin", paths.MODEL)

    def load(self, path):
        encoder = SentenceEncoder.load(path)
        self._encoder = encoder
        self._encode = encoder.tokenizer.encode_batch
        self._max_length = encoder.max_length
        self.version = encoder.version
        self.spec = TextSpec(dimension=encoder.dimension, input_name=INPUT_NAME,
                             output_name=OUTPUT_NAME, max_chars=MAX_CHARS)
        # The batcher calls `predict` once per batch: the kernel itself, no wrapper.
        self.predict = encoder.embed_ids  # pylint: disable=method-hidden

    def predict(self, rows):
        """Embeddings of token id sequences (replaced by the kernel itself once loaded)."""
        return self._encoder.embed_ids(rows)

    def prepare(self, rows):
        """Token ids of each text ([CLS] ... [SEP], at most 256)."""
        try:
            return self._encode(rows)
        except inference_errors.InputError as err:
            raise BadRequestError(f"{err}.") from None

    def row_cost(self, row):
        return len(row)

    def task_request(self, doc):
        """A /v1/embed request body -> (texts, None)."""
        protocol.only_fields(doc, ("texts",), "the request")
        if "texts" not in doc:
            raise BadRequestError('\'texts\' is missing: send {"texts": ["a sentence", ...]}.')
        texts = doc["texts"]
        if not isinstance(texts, list) or not texts:
            raise BadRequestError(f"'texts' must be a non-empty array of strings, got "
                                  f"{protocol.describe(texts)}.")
        if len(texts) > contract.MAX_INSTANCES:
            raise BadRequestError(f"'texts' has {len(texts)} texts; at most "
                                  f"{contract.MAX_INSTANCES} per request.")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise BadRequestError(f"texts[{i}] must be a string, got "
                                      f"{protocol.describe(text)}.")
            if len(text) > MAX_CHARS:
                raise BadRequestError(f"texts[{i}] has {len(text)} characters; at most "
                                      f"{MAX_CHARS} per text.")
        return texts, None

    def task_response(self, probabilities, options):
        """The /v1/embed result (results.schema.json)."""
        del options
        return {
            "format": contract.RESULTS_FORMAT,
            "api_version": API_VERSION,
            "model": {"name": self.spec.model_name, "version": self.version},
            "dimension": self.spec.dimension,
            "embeddings": [list(row) for row in probabilities],
        }

    def contract(self):
        spec = self.spec
        return Contract(
            description=(
                f"Sentence embeddings: {spec.dimension} numbers per text, of unit length (the "
                "cosine similarity of two texts is the dot product of their embeddings). Open "
                "Inference Protocol v2 REST under /v2 (a BYTES input, an FP32 output), a task "
                "API under /v1."),
            task=Task(
                operation="embed", summary="Embeddings of texts (task API)",
                about="The task API: one embedding per text.",
                request=("EmbedRequest", _embed_request_schema()),
                response=("EmbedResults", _results_body_schema(spec)),
                example={"texts": EXAMPLE_TEXTS},
                results_schema=results_schema(spec)),
            api_version=API_VERSION,
            example_row=EXAMPLE_TEXTS[:1])


def results_schema(spec):
    """JSON Schema (2020-12) of a /v1/embed response body."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:modelship:{spec.model_name}:results:{contract.RESULTS_FORMAT}",
        "title": f"{spec.model_name} embedding results, format {contract.RESULTS_FORMAT}",
        **_results_body_schema(spec),
    }


def _embed_request_schema():
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["texts"],
        "properties": {
            "texts": {"type": "array", "minItems": 1, "maxItems": contract.MAX_INSTANCES,
                      "description": "The texts to embed (UTF-8). The model reads the first "
                                     "256 tokens of each.",
                      "items": {"type": "string", "maxLength": MAX_CHARS}},
        },
    }


def _results_body_schema(spec):
    vector = {"type": "array", "minItems": spec.dimension, "maxItems": spec.dimension,
              "items": {"type": "number", "minimum": -1, "maximum": 1}}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["format", "api_version", "model", "dimension", "embeddings"],
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
            "dimension": {"type": "integer", "enum": [spec.dimension]},
            "embeddings": {"type": "array", "description": "One unit vector per text, in "
                                                           "request order.",
                           "items": vector},
        },
    }
