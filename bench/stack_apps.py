"""The HTTP stacks compared by `http_stacks.py`, each serving the same tiny JSON endpoint.

    python -m bench.stack_apps CANDIDATE PORT

`POST /echo` takes a small JSON object, parses it and answers a small JSON
object built from it: the HTTP edge of an inference call without the model.
Every candidate runs as one process with its fastest loop and parser, so the
figures compare stacks, not worker counts (the service batches in one process).
"""

import asyncio
import sys

import orjson

HOST = "127.0.0.1"


def _answer(body):
    request = orjson.loads(body)
    return orjson.dumps({"n": len(request.get("instances", ())), "ok": True})


def _bad_request():
    return b'{"error":"not found"}'


def raw_asgi_app():
    """A plain ASGI callable: no framework between the server and the handler."""
    headers = [(b"content-type", b"application/json")]

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/echo" and scope["method"] == "POST":
            status, payload = 200, _answer(body)
        else:
            status, payload = 404, _bad_request()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def starlette_app():
    """Starlette routing and Request/Response objects."""
    from starlette.applications import Starlette  # pylint: disable=import-outside-toplevel
    from starlette.responses import Response  # pylint: disable=import-outside-toplevel
    from starlette.routing import Route  # pylint: disable=import-outside-toplevel

    async def echo(request):
        return Response(_answer(await request.body()), media_type="application/json")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def serve_uvicorn(app, port):
    """uvicorn with its fastest loop and parser, one process."""
    import uvicorn  # pylint: disable=import-outside-toplevel
    uvicorn.run(app, host=HOST, port=port, loop="uvloop", http="httptools",
                lifespan="off", access_log=False, log_level="warning")


def serve_aiohttp(port):
    """aiohttp's own server on uvloop."""
    import uvloop  # pylint: disable=import-outside-toplevel
    from aiohttp import web  # pylint: disable=import-outside-toplevel

    async def echo(request):
        return web.Response(body=_answer(await request.read()), content_type="application/json")

    app = web.Application()
    app.router.add_post("/echo", echo)
    uvloop.install()
    web.run_app(app, host=HOST, port=port, access_log=None, print=None)


async def rsgi_app(scope, protocol):
    """Granian's own interface (RSGI): no ASGI message dicts."""
    if scope.path == "/echo" and scope.method == "POST":
        protocol.response_bytes(200, [("content-type", "application/json")],
                                _answer(await protocol()))
    else:
        protocol.response_bytes(404, [("content-type", "application/json")], _bad_request())


def _serve_granian(port, target, interface, loop="uvloop"):
    from granian import Granian  # pylint: disable=import-outside-toplevel
    from granian.constants import Interfaces, Loops  # pylint: disable=import-outside-toplevel
    Granian(target, address=HOST, port=port, interface=Interfaces(interface), workers=1,
            runtime_threads=1, loop=Loops(loop), log_enabled=False).serve()


def serve_granian_asgi(port):
    """Granian running the plain ASGI app."""
    _serve_granian(port, "bench.stack_apps:raw_asgi", "asgi")


def serve_granian_rsgi(port):
    """Granian running the RSGI app."""
    _serve_granian(port, "bench.stack_apps:rsgi_app", "rsgi")


def serve_blacksheep(port):
    """BlackSheep on uvicorn."""
    from blacksheep import Application, Response  # pylint: disable=import-outside-toplevel
    from blacksheep import Content  # pylint: disable=import-outside-toplevel

    app = Application()

    @app.router.post("/echo")
    async def echo(request):
        body = await request.read()
        return Response(200, content=Content(b"application/json", _answer(body)))

    serve_uvicorn(app, port)


def serve_falcon(port):
    """Falcon's ASGI app on uvicorn."""
    import falcon.asgi  # pylint: disable=import-outside-toplevel

    class Echo:
        """The /echo resource."""

        async def on_post(self, req, resp):
            """Answers the parsed body."""
            resp.data = _answer(await req.stream.read())
            resp.content_type = "application/json"

    app = falcon.asgi.App()
    app.add_route("/echo", Echo())
    serve_uvicorn(app, port)


raw_asgi = raw_asgi_app()

CANDIDATES = {
    "uvicorn+httptools+uvloop, plain ASGI": lambda port: serve_uvicorn(raw_asgi, port),
    "uvicorn+httptools+uvloop, Starlette": lambda port: serve_uvicorn(starlette_app(), port),
    "uvicorn+httptools+uvloop, Falcon ASGI": serve_falcon,
    "uvicorn+httptools+uvloop, BlackSheep": serve_blacksheep,
    "aiohttp+uvloop": serve_aiohttp,
    "granian (1 worker), plain ASGI": serve_granian_asgi,
    "granian (1 worker), RSGI": serve_granian_rsgi,
    "granian (1 worker), RSGI, asyncio loop": lambda port: _serve_granian(
        port, "bench.stack_apps:rsgi_app", "rsgi", loop="asyncio"),
}


def main(argv):
    """Serves candidate argv[1] on port argv[2] until stopped."""
    name, port = argv[1], int(argv[2])
    asyncio.set_event_loop_policy(None)
    CANDIDATES[name](port)


if __name__ == "__main__":
    main(sys.argv)
