"""A broken service for deploy drills and tests: never part of the production image.

`variants.py` copies this file into an image derived from the production one
and puts its folder first on PYTHONPATH, so every Python process of the
container imports it at start-up (that is what `sitecustomize` is for) and
it wraps the prediction handlers before the app object exists:
  DRILL_FAULT=error  every prediction answers 500 (an exception, as a
                     real bug would raise);
  DRILL_FAULT=slow   every prediction waits DRILL_FAULT_DELAY_S
                     (default 0.3) first.
(Not MODELSHIP_*: the service refuses settings of its own prefix it does not
know, and these belong to the drill, not to the service.)
Health, metadata and /metrics stay healthy: the container passes readiness,
as a subtly bad release does, and only the metric gate can catch it.
"""

import asyncio
import os


def _wrap(original, mode, delay_s):
    async def handler(self, *args):
        if mode == "error":
            raise RuntimeError("injected fault (deploy drill)")
        await asyncio.sleep(delay_s)
        return await original(self, *args)
    return handler


def _install():
    mode = os.environ.get("DRILL_FAULT", "")
    if mode not in ("error", "slow"):
        return
    from serving import app  # pylint: disable=import-outside-toplevel
    delay_s = float(os.environ.get("DRILL_FAULT_DELAY_S", "0.3"))
    for name in ("_task", "_infer"):
        setattr(app.Service, name, _wrap(getattr(app.Service, name), mode, delay_s))


_install()
