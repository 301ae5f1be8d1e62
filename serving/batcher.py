"""Dynamic batching: concurrent requests share one kernel call.

Requests put their rows on a bounded queue and await a future. One consumer
task takes up to `max_batch_size` rows at a time (whole requests, in arrival
order), waiting at most `max_queue_delay_s` after the oldest row arrived for
the batch to fill, runs the model once and hands each request its slice.

With a delay of 0 the consumer takes whatever is queued when it looks: under
load, requests arriving while the kernel runs form the next batch, so batches
grow with load without adding latency at low load. The kernel runs inline on
the loop or in one worker thread (the Cython kernels release the GIL, so the
loop keeps parsing requests meanwhile); `kernel` chooses. Inline measured
faster on 2 cores: a batch takes microseconds, less than a thread hand-off.

A batch may also be bounded by cost (`max_batch_cost`, e.g. the tokens of a
text encoder's rows: a batch of long texts takes fewer of them); each request
says its cost when it is submitted.

The queue is bounded in rows: `submit` raises `OverloadedError` rather than
letting memory grow.
"""

import asyncio
import collections
import concurrent.futures
import logging
import time

from inference import errors as inference_errors
from serving.errors import NotReadyError, OverloadedError

LOG = logging.getLogger(__name__)


class Batcher:
    """Coalesces `predict(rows)` calls; `predict` maps N rows to N probability rows (lists)."""

    def __init__(self, predict, *, max_batch_size, max_queue_delay_s, max_queue_rows,
                 retry_after_s, kernel="thread", on_batch=None, on_depth=None,
                 max_batch_cost=None):
        self._predict = predict
        self._max_batch = max_batch_size
        self._max_cost = max_batch_cost
        self._delay = max_queue_delay_s
        self._max_rows = max_queue_rows
        self._retry_after = retry_after_s
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="kernel") if kernel == "thread" else None
        self._on_batch = on_batch or (lambda rows: None)
        self._on_depth = on_depth or (lambda rows: None)
        self._pending = collections.deque()  # (x, future, arrival time, cost)
        self._rows = 0
        self._idle = None  # future the consumer waits on while the queue is empty
        self._fill = None  # future it waits on while a batch fills (delay > 0)
        self._task = None
        self._closing = False
        self._busy = False

    def start(self):
        """Starts the consumer on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._consume())

    @property
    def max_batch_cost(self):
        """The cost bound of a batch (None: rows only)."""
        return self._max_cost

    @property
    def queued_rows(self):
        """Rows waiting for a kernel call."""
        return self._rows

    async def submit(self, x, cost=None):
        """Probabilities for the rows of `x` (a list of rows), computed in some batch.

        `cost`: the rows' total cost when batches are bounded by cost."""
        if self._closing:
            raise NotReadyError("the server is shutting down; retry on another instance.")
        n = len(x)
        if self._rows + n > self._max_rows and self._rows > 0:
            raise OverloadedError(
                f"the server is at capacity ({self._rows} images queued, limit "
                f"{self._max_rows}); retry after {self._retry_after} s.", self._retry_after)
        future = asyncio.get_running_loop().create_future()
        self._pending.append((x, future, time.monotonic(), cost))
        self._rows += n
        self._on_depth(self._rows)
        _resolve(self._idle)
        if self._rows >= self._max_batch:
            _resolve(self._fill)
        return await future

    async def _consume(self):
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._idle = loop.create_future()
                await self._idle
            if self._delay > 0 and self._rows < self._max_batch and not self._closing:
                deadline = self._pending[0][2] + self._delay
                self._fill = loop.create_future()
                timer = loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()),
                                     _resolve, self._fill)
                await self._fill
                timer.cancel()
            else:
                await asyncio.sleep(0)  # requests parsed in this loop turn join the batch
            batch = self._take()
            if batch:
                await self._run(loop, batch)

    def _take(self):
        batch, rows, cost = [], 0, 0
        pending = self._pending
        max_cost = self._max_cost
        while pending and (not batch or (
                rows + len(pending[0][0]) <= self._max_batch
                and (max_cost is None or cost + (pending[0][3] or 0) <= max_cost))):
            x, future, _, x_cost = pending.popleft()
            rows += len(x)
            cost += x_cost or 0
            if not future.done():  # the caller went away
                batch.append((x, future))
        self._rows -= rows
        self._on_depth(self._rows)
        return batch

    async def _run(self, loop, batch):
        self._busy = True
        try:
            if len(batch) == 1:
                x = batch[0][0]
            else:
                x = []
                for part, _ in batch:
                    x.extend(part)
            self._on_batch(len(x))
            try:
                proba = await self._call(loop, x)
            except inference_errors.InputError:
                if len(batch) == 1:
                    raise
                # Requests are validated before they queue; if one still fails, run each
                # alone so only the bad one gets the error.
                for one in batch:
                    await self._run(loop, [one])
                return
            start = 0
            for part, future in batch:
                end = start + len(part)
                if not future.done():
                    future.set_result(proba[start:end])
                start = end
        except Exception as err:  # pylint: disable=broad-except
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
        finally:
            self._busy = False

    async def _call(self, loop, x):
        if self._executor is None:
            return self._predict(x)
        return await loop.run_in_executor(self._executor, self._predict, x)

    async def drain(self, timeout_s):
        """Stops taking new requests and waits (up to `timeout_s`) for queued ones to finish."""
        self._closing = True
        deadline = time.monotonic() + timeout_s
        _resolve(self._fill)
        while (self._pending or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)


def _resolve(future):
    if future is not None and not future.done():
        future.set_result(None)
