"""The serving runtime with one extra, benchmark-only route: the stack's own limit.

    MODELSHIP_HANDLER=services.digits.handler:DigitsHandler python3 -m bench.noop_server

The same server as `python3 -m serving` (same checks, Granian settings, `App`,
`Service.handle`: routing, admission, body deadline, metrics), plus
`POST /bench/noop`, which reads the body like any request but answers a
constant small JSON object without parsing it or calling the model. The ratio
of the OIP infer endpoint's throughput to this one's is how much of the
stack's capacity the protocol and the model take (docs/benchmarks.md).

The route exists only in this benchmark's process: it is not in the runtime,
the OpenAPI document or the image.
"""

import sys

import serving.__main__ as serving_main
from serving.app import App, Response, Service

NOOP_PATH = "/bench/noop"
NOOP_BODY = b'{"ok":true}'
_JSON = "application/json"


class NoopService(Service):
    """The service with `POST /bench/noop` added."""

    def __init__(self, config, handler=None, docs_file=None):
        super().__init__(config, handler, docs_file)
        self._static[NOOP_PATH] = ("noop", {"POST": self._noop}, ())

    async def _noop(self, header, read_body):
        # As the infer route: ready check, media type, admission and body deadline.
        await self._body(header, read_body)
        return Response(200, self._headers(_JSON), NOOP_BODY)


def create_app():
    """Granian factory target: the app with the no-op route."""
    return App(service_class=NoopService)


if __name__ == "__main__":
    sys.exit(serving_main.main(app_target=f"{__spec__.name}:create_app"))
