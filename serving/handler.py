"""The handler API: the one class a model team writes (README.md, "Writing a handler").

A handler loads its model once, predicts on a batch of rows, and, when the model
has a task endpoint, turns that endpoint's JSON into rows and results back into
JSON. Everything else (HTTP, the Open Inference Protocol, health, batching,
caching, metrics, configuration, the OpenAPI contract) is the runtime's.

The runtime serves two kinds of model, chosen by the spec the handler sets in
`load`: classifiers (`InputSpec`: rows of numbers in, one row of class
probabilities out per row) and text encoders (`TextSpec`: texts in, one vector
of `dimension` numbers out per text, e.g. sentence embeddings).
"""

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the model takes and returns; the handler sets it in `load`.

    `n_inputs` numbers per row, each from 0 to `max_level`; a row may also come
    nested as `image_shape` (empty: flat only). `labels` name the classes, in the
    order of the probabilities `predict` returns. `item` and `value` are the words
    error messages use for a row and one of its numbers. `model_name` is filled in
    by the runtime (the served name).
    """

    input_name: str
    n_inputs: int
    max_level: float
    labels: tuple
    image_shape: tuple = ()
    item: str = "row"
    value: str = "value"
    model_name: str = ""

    def row_shapes(self):
        """Accepted shapes of one instance: flat, and as an image if the model has one."""
        return [(self.n_inputs,)] + ([self.image_shape] if self.image_shape else [])

    @property
    def row_size(self):
        """Numbers `predict` returns per row: one probability per label."""
        return len(self.labels)

    def warm_rows(self, n):
        """`n` valid rows to run the model on before the service is ready."""
        return [[0.0] * self.n_inputs for _ in range(n)]


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """A text encoder: each text in, one vector of `dimension` float32 numbers out.

    Over OIP the input `input_name` is a BYTES tensor of shape [N] (or [N, 1]) of
    UTF-8 texts of at most `max_chars` characters each, and the output
    `output_name` an FP32 tensor [N, dimension]. `predict` gets what `prepare`
    made of the texts (by default the texts themselves) and returns one sequence
    of `dimension` floats per row. `item` is the word error messages use for one
    text; `model_name` is filled in by the runtime.
    """

    dimension: int
    input_name: str = "text"
    output_name: str = "embedding"
    max_chars: int = 100_000
    item: str = "text"
    model_name: str = ""
    labels: tuple = ()

    @property
    def row_size(self):
        """Numbers `predict` returns per row: the vector's dimension."""
        return self.dimension

    def warm_rows(self, n):
        """`n` texts to run the model on before the service is ready."""
        return ["The model is warming up before the service says it is ready."] * n


@dataclasses.dataclass(frozen=True)
class Task:
    """The contract of the model's own endpoint (`Handler.task_path`) beside the OIP routes.

    `operation` names it (OpenAPI operationId, metrics route label); `about`
    describes the task; `request` and `response` are (schema name, JSON Schema)
    pairs; `example` is a request body. `results_schema`, when given, is a
    standalone JSON Schema of responses served at `Handler.results_path`.
    """

    operation: str
    summary: str
    about: str
    request: tuple
    response: tuple
    example: dict
    results_schema: dict | None = None


@dataclasses.dataclass(frozen=True)
class Contract:
    """What the OpenAPI document says about the model; `Handler.contract()` returns it.

    `description` opens the document; `example_row` (with `example_datatype`) is
    the input of the OIP infer example. `api_version` is the version of this
    model's API (the document's info.version, the X-API-Version header, the
    io.modelship.api.version label): the model team raises it when its contract
    changes (minor: additions; major: a break). None: the runtime's own default
    (serving.contract.API_VERSION), for a model that only serves OIP.
    """

    description: str
    task: Task | None = None
    example_row: list | None = None
    example_datatype: str = "FP32"
    api_version: str | None = None


class Handler:
    """Base class of handlers. Subclass it and write `load` and `predict`;
    `task_request`, `task_response` and `contract` only for a task endpoint.

    Class attributes: `name` (the served model name unless MODELSHIP_MODEL_NAME
    says otherwise), `server_name` (GET /v2), `platform` (model metadata),
    `task_path` (POST route of the task endpoint; None: OIP only) and
    `results_path` (GET route of the task's results schema; None: not served).
    """

    name = "model"
    server_name = "modelship"
    platform = "modelship"
    task_path = None
    results_path = None
    # Batching by cost (e.g. tokens) rather than rows: when set, a batch holds rows
    # whose `row_cost` adds up to at most this (MODELSHIP_MAX_BATCH_COST overrides;
    # a single larger request still runs, alone). None: rows only.
    max_batch_cost = None
    # Set by `load`.
    version = None
    spec = None

    @classmethod
    def default_model_path(cls):
        """Where the model artifact is when MODELSHIP_MODEL_PATH is not set (None: nowhere)."""
        return None

    def load(self, path):
        """Loads the model at `path` once; sets `self.version` and `self.spec`.

        Raise any exception with a clear message: the server prints it and exits 2.
        """
        raise NotImplementedError

    def predict(self, rows):
        """Probabilities for `rows` (lists of floats): one list per row, one float per label.

        Hot path: the runtime calls it once per batch. An instance attribute
        (`self.predict = model.predict_proba` in `load`) saves a call.
        """
        raise NotImplementedError

    def prepare(self, rows):
        """What `predict` takes, made from a request's validated rows (e.g. tokens from
        texts); called once per request on the event loop, before batching, only for
        rows the cache does not hold. Raise `serving.errors.BadRequestError` for input
        the model cannot take. Default: the rows themselves."""
        return rows

    def row_cost(self, row):
        """The cost of one prepared row when `max_batch_cost` is set (e.g. its tokens)."""
        del row
        return 1

    def task_request(self, doc):
        """A task request (parsed JSON object) -> (rows, options) for `task_response`.

        Raise `serving.errors.BadRequestError` naming the field for a bad request.
        """
        raise NotImplementedError

    def task_response(self, probabilities, options):
        """The task response (a JSON-able dict) for the rows' probabilities."""
        raise NotImplementedError

    def contract(self):
        """The model's part of the OpenAPI document (`Contract`); called after `load`."""
        return Contract(description=f"Serves {self.spec.model_name}. Open Inference Protocol "
                                    "v2 REST under /v2.")


def resolve(ref):
    """The handler class named by `ref`, "package.module:Class"; ValueError saying why not."""
    module_name, sep, class_name = ref.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"{ref!r} is not package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import {module_name} ({err})") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"{module_name} has no class {class_name}")
    return cls
