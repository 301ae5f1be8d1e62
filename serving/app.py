"""The HTTP edge: routes, request bodies, responses, and the one place where
typed errors become status codes (`_STATUS`). The model is the handler's
(`handler.py`); everything here is the same for every model.

`Service.handle` is independent of the server: it takes a method, a path, a
header getter and a body reader, and returns a `Response`. `App` adapts it to
Granian's RSGI interface (`__rsgi_init__` starts loading the model,
`__rsgi__` serves, `__rsgi_del__` drains).

Lifecycle: live as soon as the server runs; ready (200 on /v2/health/ready)
only once the handler has loaded the model, its version is the one expected
and it has answered a warm-up batch.

Bodies: a handler's `read_body(limit)` first admits the request
(`admission.py`: a slot and its declared length, or 503 at once), then
receives the body within MODELSHIP_BODY_TIMEOUT_S (408 beyond). What a request
was admitted with is given back when its response is ready.
"""

import asyncio
import dataclasses
import gzip
import logging
import os
import sys
import time

import orjson
from granian.rsgi import ProtocolClosed

from inference import errors as inference_errors
from serving import cache as cache_lib
from serving import binary_data, contract, errors, protocol
from serving.admission import Admission, Deadlines
from serving.batcher import Batcher
from serving.config import Config
from serving.handler import Handler, TextSpec
from serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from serving.metrics import Metrics

LOG = logging.getLogger("serving")

# The only mapping from errors to HTTP statuses. First match wins.
_STATUS = (
    (errors.BadRequestError, 400),
    (inference_errors.InputError, 400),
    (errors.NotFoundError, 404),
    (errors.MethodNotAllowedError, 405),
    (errors.RequestTimeoutError, 408),
    (errors.PayloadTooLargeError, 413),
    (errors.UnsupportedMediaTypeError, 415),
    (errors.NotReadyError, 503),
    (errors.OverloadedError, 503),
)
_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
# The HTML reference, built by the model's api:docs target into the server's data
# (runfiles under Bazel, the same place in the image): api/ beside the handler's module.
DOCS_FILE = os.path.join("api", "docs.html.gz")
_KNOWN_METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"))


class Response:
    """Status, headers [(name, value)] and body bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class Service:
    """The service behind the HTTP server: state, routes and handlers."""

    def __init__(self, config, handler=None, docs_file=None):
        """`handler`: an instance of the model's handler (default: a new `config.handler`);
        already loaded (`version` set) or not."""
        self.config = config
        self.handler = config.handler() if handler is None else handler
        self.metrics = Metrics()
        self.state = "loading"
        self.spec = None
        self.batcher = None
        self._prepare = None  # the handler's prepare, when it has its own
        self._cost = None  # the handler's row_cost, when batches are bounded by cost
        self.cache = cache_lib.NoCache()
        self._keys = None
        self._responses = None  # cache_lib.Responses once ready, unless the cache is off
        self._stats = cache_lib.Stats()
        self._documents = {}
        self._inflight = 0
        self.admission = Admission(config.max_requests_in_flight,
                                   config.max_body_bytes_in_flight, config.retry_after_s)
        self.metrics.watch_in_flight(self.admission)
        self._deadlines = Deadlines()
        # Known before loading when __main__ pinned it; every response carries it.
        self.version = config.expected_version
        # The model's API version (its Contract's), once loaded; the runtime's until then.
        self.api_version = contract.API_VERSION
        # path -> (metrics route label, {method: handler}, extra handler arguments)
        self._static = {
            "/v2/health/live": ("live", {"GET": self._live}, ()),
            "/v2/health/ready": ("ready", {"GET": self._ready}, ()),
            "/v2": ("server", {"GET": self._server_metadata}, ()),
            "/metrics": ("metrics", {"GET": self._metrics}, ()),
            "/openapi.json": ("openapi", {"GET": self._document}, ("/openapi.json",)),
            contract.DOCS_PATH: ("docs", {"GET": self._docs}, ()),
            # The hot path, found without parsing the path (`_model_route` finds the
            # same route under any other model name or a version, to answer 404 or serve).
            f"/v2/models/{config.model_name}/infer": (
                "/v2/models/{model_name}/infer", {"POST": self._infer},
                (config.model_name, None)),
        }
        # The task route's metrics label is "predict" whatever its path (the deploy
        # gate watches it).
        if self.handler.task_path:
            self._static[self.handler.task_path] = ("predict", {"POST": self._task}, ())
        if self.handler.results_path:
            self._static[self.handler.results_path] = (
                "results_schema", {"GET": self._document}, (self.handler.results_path,))
        self._docs_gzip = _read_docs(docs_file or _handler_docs(self.handler))
        self._docs_plain = None

    # --- lifecycle -----------------------------------------------------------

    async def start(self):
        """Loads and warms up the model off the event loop, then becomes ready."""
        loop = asyncio.get_running_loop()
        config = self.config
        handler = self.handler
        try:
            if handler.version is None:
                await loop.run_in_executor(None, load, handler, config)
            # The handler's spec from here on carries the served name (its task response
            # may need it).
            spec = handler.spec = dataclasses.replace(handler.spec,
                                                      model_name=config.model_name)
            warm = handler.prepare(spec.warm_rows(config.max_batch_size))
            await loop.run_in_executor(None, handler.predict, warm)
            await loop.run_in_executor(None, handler.predict, warm[:1])
            model_contract = handler.contract()
            documents = contract_documents(handler, spec, model_contract)
        except Exception as err:  # pylint: disable=broad-except
            self.state = "failed"
            LOG.error("model %s could not be loaded: %s", config.model_path, err)
            raise
        self.spec, self.version = spec, handler.version
        self.api_version = model_contract.api_version or contract.API_VERSION
        self._documents = {"/openapi.json": documents[contract.OPENAPI_FILE].encode()}
        if handler.results_path:
            self._documents[handler.results_path] = \
                documents[contract.RESULTS_SCHEMA_FILE].encode()
        stats = self._stats = cache_lib.Stats(*self.metrics.cache_stats(config.cache))
        text = isinstance(spec, TextSpec)
        self.cache = cache_lib.from_config(config, self.version, spec.row_size, stats,
                                           probabilities=not text)
        self._keys = cache_lib.Keys(self.version) if config.cache != "off" else None
        if config.cache != "off" and config.response_cache_bytes:
            self._responses = cache_lib.Responses(config.response_cache_bytes, self.version)
        self.batcher = Batcher(
            handler.predict, max_batch_size=config.max_batch_size,
            max_queue_delay_s=config.max_queue_delay_ms / 1000.0,
            max_queue_rows=config.max_queue_rows, retry_after_s=config.retry_after_s,
            kernel=config.kernel, on_batch=self.metrics.batch_size.observe,
            on_depth=self.metrics.queue_depth.set,
            max_batch_cost=config.max_batch_cost or handler.max_batch_cost)
        # Rows the handler turns into something else before batching (e.g. texts into
        # tokens), and batches bounded by the rows' cost.
        self._prepare = None if type(handler).prepare is Handler.prepare else handler.prepare
        self._cost = None if self.batcher.max_batch_cost is None else handler.row_cost
        self.batcher.start()
        self.metrics.set_model(config.model_name, self.version)
        self.metrics.ready.set(1)
        self.state = "ready"
        LOG.info("ready: model %s version %s (cache %s, max batch %d, delay %.2f ms, kernel %s)",
                 config.model_name, self.version, config.cache, config.max_batch_size,
                 config.max_queue_delay_ms, config.kernel)

    async def stop(self, timeout_s):
        """Drains: waits for in-flight requests (up to `timeout_s`), then releases resources."""
        self.state = "draining"
        self.metrics.ready.set(0)
        deadline = time.monotonic() + timeout_s
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.batcher is not None:
            await self.batcher.drain(max(0.0, deadline - time.monotonic()))
        await self.cache.close()
        await self._deadlines.close()
        if self._inflight:
            LOG.warning("stopped with %d requests still in flight", self._inflight)

    # --- dispatch ------------------------------------------------------------

    async def handle(self, method, path, header, read_body):
        """Answers one request. `header(name)` gets a header; `read_body(limit)` the body."""
        start = time.perf_counter()
        self._inflight += 1
        route = "unmatched"
        admitted = []  # the body size admitted, once read_body is called

        def admitted_read_body(limit):
            return self._admit_and_read(header, read_body, limit, admitted)

        try:
            route, handler, args = self._route(method, path)
            response = await handler(header, admitted_read_body, *args)
        except Exception as err:  # pylint: disable=broad-except
            response = self._error(err)
        finally:
            self._inflight -= 1
            for size in admitted:
                self.admission.release(size)
        self.metrics.observe_request(route, method if method in _KNOWN_METHODS else "OTHER",
                                     response.status, time.perf_counter() - start)
        return response

    async def _admit_and_read(self, header, read_body, limit, admitted):
        """The body, once admitted (503 if not) and received in time (408 if not)."""
        length = _declared_length(header, limit)
        size = limit if length is None else length  # chunked: the most it may be
        self.admission.admit(size)
        admitted.append(size)
        return await self._deadlines.read(read_body(limit), self.config.body_timeout_s)

    def _route(self, method, path):
        static = self._static.get(path)
        if static is not None:
            route, methods, args = static
        elif path.startswith("/v2/models/"):
            route, methods, args = self._model_route(path)
        else:
            raise errors.NotFoundError(f"no route {path!r}; see /openapi.json for the API.")
        handler = methods.get(method)
        if handler is None:
            raise errors.MethodNotAllowedError(
                f"{method} is not allowed on {path}; use {', '.join(methods)}.", methods)
        return route, handler, args

    def _model_route(self, path):
        parts = path[len("/v2/models/"):].split("/")
        name, rest = parts[0], parts[1:]
        template = "/v2/models/{model_name}"
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
            template += "/versions/{model_version}"
        if rest == []:
            methods = {"GET": self._model_metadata}
        elif rest == ["ready"]:
            methods, template = {"GET": self._model_ready}, template + "/ready"
        elif rest == ["infer"]:
            methods, template = {"POST": self._infer}, template + "/infer"
        else:
            raise errors.NotFoundError(f"no route {path!r}; see /openapi.json for the API.")
        return template, methods, (name, version)

    def _check_model(self, name, version):
        if name != self.config.model_name:
            raise errors.NotFoundError(
                f"unknown model {name!r}; this server serves {self.config.model_name!r}.")
        if version is not None and version != self.version:
            raise errors.NotFoundError(
                f"model {name!r} has no version {version!r}; it serves version "
                f"{self.version}.")

    def _require_ready(self):
        if self.state != "ready":
            raise errors.NotReadyError(
                {"loading": "the model is still loading; retry shortly.",
                 "failed": "the model failed to load; see the server log.",
                 "draining": "the server is shutting down; retry on another instance."}
                [self.state])

    # --- handlers ------------------------------------------------------------

    async def _live(self, header, read_body):
        del header, read_body
        return self._json(200, {"live": True})

    async def _ready(self, header, read_body):
        del header, read_body
        ready = self.state == "ready"
        return self._json(200 if ready else 503, {"ready": ready})

    async def _server_metadata(self, header, read_body):
        del header, read_body
        return self._json(200, {"name": self.handler.server_name,
                                "version": self.api_version,
                                "extensions": []})

    async def _model_metadata(self, header, read_body, name, version):
        del header, read_body
        self._check_model(name, version)
        self._require_ready()
        spec = self.spec
        if isinstance(spec, TextSpec):
            return self._json(200, {
                "name": spec.model_name,
                "versions": [self.version],
                "platform": self.handler.platform,
                "inputs": [{"name": spec.input_name, "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": spec.output_name, "datatype": "FP32",
                             "shape": [-1, spec.dimension]}],
            })
        return self._json(200, {
            "name": spec.model_name,
            "versions": [self.version],
            "platform": self.handler.platform,
            "inputs": [{"name": spec.input_name, "datatype": "FP32",
                        "shape": [-1, spec.n_inputs]}],
            "outputs": [
                {"name": contract.OUTPUT_PROBABILITIES, "datatype": "FP32",
                 "shape": [-1, len(spec.labels)]},
                {"name": contract.OUTPUT_LABEL, "datatype": "BYTES", "shape": [-1]},
            ],
            "labels": list(spec.labels),
        })

    async def _model_ready(self, header, read_body, name, version):
        del header, read_body
        self._check_model(name, version)
        ready = self.state == "ready"
        return self._json(200 if ready else 503, {"name": name, "ready": ready})

    async def _task(self, header, read_body):
        body = await self._body(header, read_body)
        key, kept = self._kept("task", body)
        if kept is not None:
            return kept
        rows, options = self.handler.task_request(protocol.parse_json(body))
        proba = await self._probabilities(rows)
        # The task's results carry their own versions (the handler's results schema).
        return self._keep(key, self._json(200, self.handler.task_response(proba, options),
                                          versions=False), len(rows))

    async def _infer(self, header, read_body, name, version):
        self._check_model(name, version)
        # The binary tensor data extension: the header says where the JSON ends.
        json_length = header(binary_data.HEADER)
        body = await self._body(header, read_body, binary=json_length is not None)
        binary = None
        key = None
        if json_length is not None:
            body, binary = binary_data.split(body, json_length)
        else:
            key, kept = self._kept(f"infer:{name}:{version}", body)
            if kept is not None:
                return kept
        request = protocol.parse_infer(protocol.parse_json(body), self.spec, binary)
        proba = await self._probabilities(request.x)
        doc, raw = protocol.infer_body(self.spec, self.version, request, proba,
                                       api_version=self.api_version)
        response = self._json(200, doc)
        if raw:
            response.headers[0] = ("content-type", binary_data.CONTENT_TYPE)
            response.headers.append((binary_data.HEADER, str(len(response.body))))
            response.body += raw
            return response
        return self._keep(key, response, len(request.x),
                          request.request_id if request.id_generated else None)

    async def _metrics(self, header, read_body):
        del header, read_body
        return Response(200, self._headers(METRICS_CONTENT_TYPE), self.metrics.render())

    async def _document(self, header, read_body, path):
        del header, read_body
        self._require_ready()
        return Response(200, self._headers(_JSON), self._documents[path])

    async def _docs(self, header, read_body):
        """The HTML reference; gzip as built when the client takes it (all browsers do)."""
        del read_body
        if self._docs_gzip is None:
            raise errors.NotFoundError(
                "this server was built without its API docs (the model's api:docs target); "
                "the machine-readable contract is at /openapi.json.")
        headers = self._headers(_HTML) + [("vary", "accept-encoding")]
        if "gzip" in (header("accept-encoding") or "").lower():
            return Response(200, headers + [("content-encoding", "gzip")], self._docs_gzip)
        if self._docs_plain is None:
            self._docs_plain = gzip.decompress(self._docs_gzip)
        return Response(200, headers, self._docs_plain)

    # --- helpers -------------------------------------------------------------

    async def _body(self, header, read_body, binary=False):
        """The request body, once the service is ready and the body's type is one it reads.

        JSON, declared or not: Triton's and KServe's clients send infer requests
        without a Content-Type, and both servers read them as JSON. A body with
        binary tensor data (`binary`) may also be declared application/octet-stream.
        An explicit other type is refused.
        """
        self._require_ready()
        content_type = (header("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type and content_type != _JSON and not (
                content_type.startswith("application/") and content_type.endswith("+json")) \
                and not (binary and content_type == binary_data.CONTENT_TYPE):
            raise errors.UnsupportedMediaTypeError(
                f"Content-Type is {content_type!r}; send the body as application/json (or "
                "with no Content-Type)"
                + (", or application/octet-stream with binary tensor data." if binary else "."))
        return await read_body(self.config.max_body_bytes)

    def _kept(self, route, body):
        """(key, the kept answer to this very request or None): cache_lib.Responses."""
        if self._responses is None:
            return None, None
        key = self._responses.key(route, body)
        entry = self._responses.get(key)
        if entry is None:
            return key, None
        headers, parts, rows = entry
        self._stats.hit(rows)
        answer = parts[0] if len(parts) == 1 else \
            parts[0] + protocol.new_request_id().encode("ascii") + parts[1]
        return key, Response(200, list(headers), answer)

    def _keep(self, key, response, rows, made_up_id=None):
        if key is not None:
            self._responses.put(key, response.headers, response.body, rows, made_up_id)
        return response

    async def _compute(self, x):
        """The model's outputs for rows `x` (validated), computed in some batch."""
        if self._prepare is not None:
            x = self._prepare(x)
        cost = None if self._cost is None else sum(map(self._cost, x))
        return await self.batcher.submit(x, cost)

    async def _probabilities(self, x):
        if self._keys is None:
            return await self._compute(x)
        keys = self._keys.of(x)
        cached = await self.cache.get_many(keys)
        missing = [i for i, value in enumerate(cached) if value is None]
        if not missing:
            return [cache_lib.decode(value) for value in cached]
        computed = await self._compute(
            x if len(missing) == len(keys) else [x[i] for i in missing])
        self.cache.put_many([keys[i] for i in missing], [cache_lib.encode(r) for r in computed])
        if len(missing) == len(keys):
            return computed
        proba = [None if value is None else cache_lib.decode(value) for value in cached]
        for i, row in zip(missing, computed):
            proba[i] = row
        return proba

    def _headers(self, content_type):
        headers = [("content-type", content_type),
                   (contract.API_VERSION_HEADER, self.api_version)]
        if self.version:
            headers.append((contract.MODEL_VERSION_HEADER, self.version))
        return headers

    def _json(self, status, body, versions=True):
        if versions:
            body["api_version"] = self.api_version
            if self.version:
                body.setdefault("model_version", self.version)
        return Response(status, self._headers(_JSON), orjson.dumps(body))

    def _error(self, err):
        for kind, status in _STATUS:
            if isinstance(err, kind):
                break
        else:
            LOG.exception("unexpected error", exc_info=err)
            status, err = 500, "internal error; see the server log."
        response = self._json(status, {"error": str(err)})
        if isinstance(err, errors.OverloadedError):
            response.headers.append(("retry-after", str(err.retry_after_s)))
        elif isinstance(err, errors.MethodNotAllowedError):
            response.headers.append(("allow", ", ".join(err.allowed)))
        elif isinstance(err, errors.RequestTimeoutError):
            # The rest of the body may still be on its way: the connection cannot be reused.
            response.headers.append(("connection", "close"))
        return response


def load(handler, config):
    """Loads the handler's model from `config.model_path`, checking the version pinned
    by MODELSHIP_EXPECTED_VERSION; raises whatever the handler raises, or ModelError."""
    handler.load(config.model_path)
    if handler.version is None or handler.spec is None:
        raise errors.ModelError(f"{type(handler).__name__}.load did not set version and spec.")
    if config.expected_version is not None and handler.version != config.expected_version:
        raise errors.ModelError(
            f"{config.model_path} is model version {handler.version}, but version "
            f"{config.expected_version} was expected. Deploy the expected artifact or "
            "update the pinned version.")


def contract_documents(handler, spec, model=None):
    """{file name: text} of the contract documents of a loaded handler served as `spec`
    (`model`: its Contract, when the caller has it already)."""
    model = model or handler.contract()
    documents = {contract.OPENAPI_FILE: contract.render(contract.openapi(
        spec, model, handler.task_path, handler.results_path))}
    if handler.results_path:
        if not (model.task and model.task.results_schema is not None):
            raise errors.ModelError(f"{type(handler).__name__} has a results_path but its "
                                    "contract's task has no results_schema.")
        documents[contract.RESULTS_SCHEMA_FILE] = contract.render(model.task.results_schema)
    return documents


def _handler_docs(handler):
    """The docs file beside the handler's module (api/docs.html.gz), or None."""
    module = sys.modules.get(type(handler).__module__)
    if module is None or not getattr(module, "__file__", None):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(module.__file__)), DOCS_FILE)


def _read_docs(path):
    """The gzip-compressed HTML reference, or None (logged) when it is not there."""
    if path is None:
        return None
    try:
        with open(path, "rb") as data:
            return data.read()
    except OSError as err:
        LOG.warning("no API docs at %s (%s): /docs answers 404", path, err.strerror)
        return None


def _declared_length(header, limit):
    """The Content-Length header as an int (None if absent); refuses a bad or too large one."""
    length = header("content-length")
    if length is None:
        return None
    if not (length.isascii() and length.isdigit()):
        raise errors.BadRequestError(f"Content-Length {length!r} is not a byte count.")
    length = int(length)
    if length > limit:
        raise errors.PayloadTooLargeError(
            f"the body is {length} bytes; the limit is {limit} bytes.")
    return length


async def _read_body(proto, header, limit):
    """The request body, refused as soon as it is known to exceed `limit` bytes.

    The caller (`Service._admit_and_read`) has checked Content-Length and set the deadline.
    Read chunk by chunk, each copied out at once: Granian's `await proto()` keeps
    every received chunk in its own buffer until the body is complete, so a client
    trickling single bytes made it hold about 4 KiB per byte sent (measured).
    """
    declared = header("content-length")
    want = limit + 1 if declared is None else int(declared)
    body = _Body(limit)
    try:
        async for chunk in proto:
            if body.add(chunk) >= want:
                break  # all there: waiting for the end of the stream costs an await
    except ProtocolClosed:
        raise errors.BadRequestError("the connection closed before the body was complete.") \
            from None
    # Granian ends the iteration quietly when the client stops short.
    if declared is not None and body.size != want:
        raise errors.BadRequestError(
            f"the connection closed after {body.size} of the {declared} body bytes announced.")
    return body.value()


class _Body:
    """A body's chunks, refused once over `limit` bytes; copied only when there are several."""

    __slots__ = ("limit", "size", "_first", "_more")

    def __init__(self, limit):
        self.limit, self.size = limit, 0
        self._first, self._more = b"", None  # `_more`: a buffer once there is a second chunk

    def add(self, chunk):
        """Takes one chunk; returns the size so far."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise errors.PayloadTooLargeError(
                f"the body exceeds the limit of {self.limit} bytes.")
        if self._more is not None:
            self._more += chunk
        elif not self._first:
            self._first = chunk
        elif chunk:
            self._more = bytearray(self._first)
            self._more += chunk
        return self.size

    def value(self):
        """The whole body as bytes."""
        return self._first if self._more is None else bytes(self._more)


class App:
    """The RSGI application Granian runs in its worker process.

    `service_class`: the `Service` (sub)class to run; the default serves the
    handler's routes only (bench adds a benchmark-only route this way).
    """

    def __init__(self, config=None, service_class=Service):
        self._config = config
        self._service_class = service_class
        self.service = None
        self._start = None

    def __rsgi_init__(self, loop):
        config = self._config or Config.from_environ()
        logging.basicConfig(level=config.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.service = self._service_class(config)
        self._start = loop.create_task(self.service.start())
        self._start.add_done_callback(_exit_if_failed)

    async def __rsgi__(self, scope, proto):
        if scope.proto != "http":
            return
        header = scope.headers.get
        response = await self.service.handle(
            scope.method, scope.path, header, lambda limit: _read_body(proto, header, limit))
        try:
            proto.response_bytes(response.status, response.headers, response.body)
        except ProtocolClosed:
            pass  # the client went away; nothing to answer

    def __rsgi_del__(self, loop):
        loop.run_until_complete(self.service.stop(self.service.config.shutdown_timeout_s))


def _exit_if_failed(task):
    if not task.cancelled() and task.exception() is not None:
        # A worker that cannot load its model must not linger unready: exiting makes
        # Granian stop, so the orchestrator sees the failure.
        LOG.critical("exiting: %s", task.exception())
        logging.shutdown()
        os._exit(3)  # pylint: disable=protected-access


def create_app():
    """Granian factory target: the app, configured from the environment."""
    return App()


class AsgiApp:
    """The ASGI application uvicorn runs: lifespan starts loading, http serves."""

    def __init__(self, config, handler=None):
        self.service = Service(config, handler)
        self._start = None

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope, receive, send):
        headers = {}
        for name, value in scope["headers"]:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        response = await self.service.handle(
            scope["method"], scope["path"], headers.get,
            lambda limit: _receive_body(receive, limit))
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                for k, v in response.headers]})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Not awaited: the server answers (live, not ready) while the model loads.
                self._start = asyncio.get_running_loop().create_task(self.service.start())
                self._start.add_done_callback(_exit_if_failed)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.service.stop(self.service.config.shutdown_timeout_s)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _receive_body(receive, limit):
    """The request body from ASGI messages, refused once it exceeds `limit` bytes.

    The caller (`Service._admit_and_read`) has checked Content-Length and set the deadline.
    """
    body = _Body(limit)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.BadRequestError("the connection closed before the body was complete.")
        body.add(message.get("body", b""))
        if not message.get("more_body", False):
            return body.value()
