"""Admission of requests with a body: a bounded number at once, a bounded sum of body bytes,
and a deadline for receiving each body.

Why: a request being received holds its body in memory, and a slow client
can hold it for as long as it likes. With these two bounds and the deadline
the worker's memory has a worst case that fits its container
(docs/benchmarks.md, "Slow and unfinished bodies"). A request that does not
fit is refused at once (`OverloadedError`: 503 with Retry-After), before a
byte of its body is read; nothing waits in a queue.

Requests without a body (health, metadata, metrics) are never counted: they
stay answerable while every slot or byte is taken.
"""

import asyncio
import time

from serving import errors

SWEEP_S = 0.05  # how late a deadline may be noticed


class Admission:
    """Slots for `max_requests` requests and `max_bytes` body bytes."""

    def __init__(self, max_requests, max_bytes, retry_after_s):
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes = 0
        self._retry_after_s = retry_after_s

    def admit(self, size):
        """Takes a slot and `size` bytes, or raises OverloadedError taking nothing."""
        if self.requests >= self.max_requests:
            raise errors.OverloadedError(
                f"{self.requests} requests are being received or served, the most this "
                f"server takes at once (MODELSHIP_MAX_REQUESTS_IN_FLIGHT); retry shortly.",
                self._retry_after_s)
        if self.bytes + size > self.max_bytes:
            raise errors.OverloadedError(
                f"{self.bytes} bytes of request bodies are being received or served; this "
                f"{size}-byte body would pass the limit of {self.max_bytes} "
                "(MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT); retry shortly.", self._retry_after_s)
        self.requests += 1
        self.bytes += size

    def release(self, size):
        """Gives back what one `admit(size)` took."""
        self.requests -= 1
        self.bytes -= size


class Deadlines:
    """Deadlines of body reads, enforced by one sweeper task rather than a timer each.

    A timer per request (asyncio.timeout) measured at about a third of the
    server's CPU time per request on a tiny endpoint; registering in a dict
    costs next to nothing. `read(coro, timeout_s)` awaits `coro` in the
    current task; past the deadline the sweeper cancels that task and the
    read raises RequestTimeoutError instead.
    """

    def __init__(self):
        self._reads = {}  # task -> deadline (loop time), or None once expired
        self._sweeper = None

    async def read(self, coro, timeout_s):
        """The result of `coro`, or RequestTimeoutError after `timeout_s` seconds."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        task = asyncio.current_task()
        reads = self._reads
        reads[task] = time.monotonic() + timeout_s
        try:
            return await coro
        except asyncio.CancelledError:
            if reads.get(task, 0) is not None:
                raise  # not ours: the server is stopping, or the client left
            task.uncancel()
            raise errors.RequestTimeoutError(
                f"the request body did not arrive within {timeout_s:g} s "
                "(MODELSHIP_BODY_TIMEOUT_S); send it whole, or faster.") from None
        finally:
            del reads[task]

    async def _sweep(self):
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            for task, deadline in list(self._reads.items()):
                if deadline is not None and deadline <= now:
                    self._reads[task] = None
                    task.cancel()

    async def close(self):
        """Stops the sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
