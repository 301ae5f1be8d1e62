"""Admission of requests with a body: both bounds, refusals that take nothing, release;
the body deadline."""

import asyncio
import time

import pytest

from serving import errors
from serving.admission import Admission, Deadlines


def test_requests_are_admitted_up_to_either_bound_and_refused_beyond_with_retry_after():
    admission = Admission(max_requests=2, max_bytes=100, retry_after_s=3)
    admission.admit(60)
    with pytest.raises(errors.OverloadedError) as too_big:
        admission.admit(41)
    assert "MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT" in str(too_big.value)
    assert too_big.value.retry_after_s == 3
    admission.admit(40)
    with pytest.raises(errors.OverloadedError) as too_many:
        admission.admit(0)
    assert "MODELSHIP_MAX_REQUESTS_IN_FLIGHT" in str(too_many.value)
    assert (admission.requests, admission.bytes) == (2, 100)  # refusals took nothing
    admission.release(60)
    admission.admit(50)
    assert (admission.requests, admission.bytes) == (2, 90)


def test_a_read_past_its_deadline_raises_408_and_other_cancellations_pass_through():
    async def run():
        deadlines = Deadlines()
        on_time = await deadlines.read(asyncio.sleep(0.01, result=b"body"), timeout_s=5)
        started = time.monotonic()
        with pytest.raises(errors.RequestTimeoutError, match="within 0.2 s"):
            await deadlines.read(asyncio.sleep(60), timeout_s=0.2)
        late = time.monotonic() - started
        reader = asyncio.ensure_future(deadlines.read(asyncio.sleep(60), timeout_s=30))
        await asyncio.sleep(0.1)
        reader.cancel()  # e.g. the server stopping: not a timeout
        with pytest.raises(asyncio.CancelledError):
            await reader
        await deadlines.close()
        return on_time, late

    on_time, late = asyncio.run(run())
    assert on_time == b"body"
    assert 0.2 <= late < 1.0
