"""The service's ASGI adapter (`serving.app.AsgiApp`) on uvicorn, for comparison.

    python -m bench.serve_uvicorn      (configured by MODELSHIP_* like the service)

The service runs on Granian (RSGI); this runs the same Service on the runner-up
stack, uvicorn + httptools + uvloop, so the choice is measured on the real
workload too (docs/benchmarks.md).
"""

import uvicorn

from serving.app import AsgiApp
from serving.config import Config


def main():
    """Serves until SIGTERM."""
    config = Config.from_environ()
    uvicorn.run(AsgiApp(config), host=config.host, port=config.port, loop="uvloop",
                http="httptools", lifespan="on", access_log=False, log_level="warning",
                timeout_graceful_shutdown=int(config.shutdown_timeout_s))


if __name__ == "__main__":
    main()
