"""Runs a model's inference service: `MODELSHIP_HANDLER=package.module:Class python3 -m serving`.

Configuration is by environment variables only (`--help` lists them);
MODELSHIP_HANDLER names the model's handler class (README.md). The
configuration and the model are checked here, before the server starts (the
handler loads the model once), so a bad setting or a broken artifact stops it
at once with a message (exit status 2) instead of a worker that never becomes
ready.

Granian runs one worker process (the batcher and the cache live in it);
SIGTERM or SIGINT stops accepting connections and drains in-flight requests
for up to MODELSHIP_SHUTDOWN_TIMEOUT_S. Granian bounds the connections it
serves at once (MODELSHIP_MAX_CONNECTIONS; more wait in the listen backlog),
each connection's read buffer (MODELSHIP_MAX_HEADER_BYTES) and the time to send
headers or stay idle (MODELSHIP_HEADER_TIMEOUT_S); the app bounds what requests
with a body hold (app.py, admission.py).
"""

import os
import sys

from serving import app as app_lib
from serving import config as config_lib

# What Granian's worker runs; bench serves a subclass through the same settings.
APP_TARGET = "serving.app:create_app"
USAGE = """usage: MODELSHIP_HANDLER=package.module:Class python3 -m serving [--help]

Serves the handler's model over HTTP (Open Inference Protocol v2 under /v2, the
handler's task endpoint, metrics at /metrics, the contract at /openapi.json).

Environment variables:
"""


def main(argv=None, environ=None, app_target=APP_TARGET):
    """Checks configuration and model, then serves until SIGTERM; the exit status.

    `app_target`: the Granian factory (`module:function`) the worker runs.
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    if argv:
        if argv[0] in ("-h", "--help"):
            print(USAGE + config_lib.describe())
            return 0
        print(f"serving: unexpected arguments {argv}; configure with environment variables "
              "(--help lists them).", file=sys.stderr)
        return 2
    try:
        config = config_lib.Config.from_environ(environ)
    except config_lib.ConfigError as err:
        print(f"serving: {err}", file=sys.stderr)
        return 2
    handler = config.handler()
    try:
        app_lib.load(handler, config)
    except Exception as err:  # pylint: disable=broad-except
        # Whatever the handler raises: a message, never a traceback.
        print(f"serving: cannot serve the model: {err}\n"
              f"  ({config_lib.PREFIX}MODEL_PATH={config.model_path}; the default is "
              f"{type(handler).__name__}.default_model_path().)", file=sys.stderr)
        return 2
    # The worker loads the same model again; pinning the version makes sure it is the
    # same one, and lets every response carry the version from the first request.
    environ[config_lib.PREFIX + "EXPECTED_VERSION"] = handler.version
    if config.model_path is not None:
        environ[config_lib.PREFIX + "MODEL_PATH"] = os.path.abspath(config.model_path)
    environ[config_lib.PREFIX + "HANDLER"] = \
        f"{config.handler.__module__}:{config.handler.__qualname__}"
    del handler
    serve(config, app_target)
    return 0


def serve(config, app_target=APP_TARGET):
    """Runs Granian with one worker process running the factory `app_target`."""
    # Imported here: `--help` and configuration errors need no server.
    from granian import Granian  # pylint: disable=import-outside-toplevel
    # pylint: disable-next=import-outside-toplevel
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings  # pylint: disable=import-outside-toplevel
    from granian.log import LogLevels  # pylint: disable=import-outside-toplevel

    Granian(
        app_target,
        factory=True,
        address=config.host,
        port=config.port,
        interface=Interfaces.RSGI,
        workers=1,
        runtime_threads=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        # Granian's "backpressure": a connection holds one of these slots from accept
        # to close, keep-alive included; further connections wait in the backlog.
        backpressure=config.max_connections,
        http1_settings=HTTP1Settings(
            # Also closes a keep-alive connection idle this long.
            header_read_timeout=int(config.header_timeout_s * 1000),
            keep_alive=True,
            # The most a connection buffers; a larger request head gets 431.
            max_buffer_size=config.max_header_bytes,
            pipeline_flush=False),
        log_level=LogLevels(config.log_level),
        workers_kill_timeout=int(config.shutdown_timeout_s) + 5,
    ).serve()


if __name__ == "__main__":
    sys.exit(main())
