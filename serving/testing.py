"""Drive a handler in-process, without a server: `HandlerClient`.

    from serving.testing import HandlerClient

    with HandlerClient(MyHandler, model_path="my.model") as client:
        assert client.get("/v2/health/ready").status == 200
        assert client.infer([[0.0] * 4])["outputs"][1]["data"] == ["cat"]
        assert client.post("/v1/predict", {"instances": [[0.0] * 4]}).status == 200

Requests go through the same `serving.app.Service` the server runs (routing,
validation, batching, cache, metrics, contract) on an event loop of the
client's own; only the socket is missing. MODELSHIP_* settings are passed as
`env` (a dict), never read from the process environment.
"""

import asyncio
import json as json_lib

from serving import app, config as config_lib, contract


class Response:
    """Status, headers {lower-case name: value} and body bytes of one answer."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        """The body, parsed as JSON."""
        return json_lib.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.body[:300]!r})"


class HandlerClient:
    """A loaded handler behind the runtime, answering requests in-process.

    `handler`: a handler class, or an instance (loaded already or not);
    `model_path`: what `load` gets (default: the handler's default); `env`:
    MODELSHIP_* settings. Loading happens on entering (or `start()`); a model
    that fails to load raises there.
    """

    def __init__(self, handler, model_path=None, env=None):
        env = dict(env or {})
        if model_path is not None:
            env[config_lib.PREFIX + "MODEL_PATH"] = str(model_path)
        cls = handler if isinstance(handler, type) else type(handler)
        self.config = config_lib.Config.from_environ(env, handler=cls)
        self.service = app.Service(self.config, None if isinstance(handler, type) else handler)
        self._loop = asyncio.new_event_loop()

    @property
    def handler(self):
        """The handler instance being served."""
        return self.service.handler

    def start(self):
        """Loads and warms up the model, as the server does before it is ready."""
        self._loop.run_until_complete(self.service.start())
        return self

    def close(self):
        """Drains and releases what the service holds; closes the event loop."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.service.stop(0))
            self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def request(self, method, path, body=b"", headers=None):
        """One request; `body` bytes. The response (`Response`)."""
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        if body:
            headers.setdefault("content-length", str(len(body)))

        async def read_body(limit):
            del limit
            return body

        response = self._loop.run_until_complete(
            self.service.handle(method, path, headers.get, read_body))
        return Response(response.status, dict(response.headers), response.body)

    def post_many(self, path, docs):
        """POSTs each JSON document in `docs` to `path` at once (they may share a batch);
        the responses, in order."""
        async def all_of():
            return await asyncio.gather(*(
                self.service.handle("POST", path, {"content-type": "application/json"}.get,
                                    _reader(json_lib.dumps(doc).encode())) for doc in docs))
        return [Response(r.status, dict(r.headers), r.body)
                for r in self._loop.run_until_complete(all_of())]

    def get(self, path, headers=None):
        """GET `path`."""
        return self.request("GET", path, headers=headers)

    def post(self, path, json=None, body=None, headers=None):
        """POST `json` (any JSON-able value) or raw `body` bytes to `path`."""
        headers = dict(headers or {})
        if json is not None:
            body = json_lib.dumps(json).encode()
            headers.setdefault("content-type", "application/json")
        return self.request("POST", path, body or b"", headers)

    def infer(self, rows, datatype="FP32", outputs=None):
        """An OIP infer request of `rows` (lists of numbers) to the served model; the
        response document. Raises AssertionError with the body unless it answers 200."""
        spec = self.service.spec
        doc = {"inputs": [{"name": spec.input_name, "shape": [len(rows), spec.n_inputs],
                           "datatype": datatype, "data": [v for row in rows for v in row]}]}
        if outputs is not None:
            doc["outputs"] = [{"name": name} for name in outputs]
        response = self.post(f"/v2/models/{spec.model_name}/infer", doc)
        assert response.status == 200, response
        return response.json()

    def openapi(self):
        """The OpenAPI document the service serves."""
        return self.get("/openapi.json").json()

    @staticmethod
    def render(doc):
        """The canonical text of a contract document (how openapi.json is written)."""
        return contract.render(doc)


def _reader(body):
    async def read_body(limit):
        del limit
        return body
    return read_body
