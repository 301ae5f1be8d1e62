"""Admission of requests with a body: a bounded number at once, a bounded sum of body bytes.

Why: a request being received holds its body in memory, and a slow client
can hold it for as long as it likes. With these two bounds (and the body
deadline, `app.py`) the worker's memory has a worst case that fits its
container (docs/benchmarks.md, "Slow and unfinished bodies"). A request
that does not fit is refused at once (`OverloadedError`: 503 with
Retry-After), before a byte of its body is read; nothing waits in a queue.

Requests without a body (health, metadata, metrics) are never counted: they
stay answerable while every slot or byte is taken.
"""

from services.digits import errors


class Admission:
    """Slots for `max_requests` requests and `max_bytes` body bytes."""

    def __init__(self, max_requests, max_bytes, retry_after_s, on_change=None):
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes = 0
        self._retry_after_s = retry_after_s
        self._on_change = on_change or _ignore

    def admit(self, size):
        """Takes a slot and `size` bytes, or raises OverloadedError taking nothing."""
        if self.requests >= self.max_requests:
            raise errors.OverloadedError(
                f"{self.requests} requests are being received or served, the most this "
                f"server takes at once (DIGITS_MAX_REQUESTS_IN_FLIGHT); retry shortly.",
                self._retry_after_s)
        if self.bytes + size > self.max_bytes:
            raise errors.OverloadedError(
                f"{self.bytes} bytes of request bodies are being received or served; this "
                f"{size}-byte body would pass the limit of {self.max_bytes} "
                "(DIGITS_MAX_BODY_BYTES_IN_FLIGHT); retry shortly.", self._retry_after_s)
        self.requests += 1
        self.bytes += size
        self._on_change(self.requests, self.bytes)

    def release(self, size):
        """Gives back what one `admit(size)` took."""
        self.requests -= 1
        self.bytes -= size
        self._on_change(self.requests, self.bytes)


def _ignore(*args):
    del args
