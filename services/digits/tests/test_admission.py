"""Admission of requests with a body: both bounds, refusals that take nothing, release."""

import pytest

from services.digits import errors
from services.digits.admission import Admission


def test_requests_are_admitted_up_to_either_bound_and_refused_beyond_with_retry_after():
    seen = []
    admission = Admission(max_requests=2, max_bytes=100, retry_after_s=3,
                          on_change=lambda *held: seen.append(held))
    admission.admit(60)
    with pytest.raises(errors.OverloadedError) as too_big:
        admission.admit(41)
    assert "DIGITS_MAX_BODY_BYTES_IN_FLIGHT" in str(too_big.value)
    assert too_big.value.retry_after_s == 3
    admission.admit(40)
    with pytest.raises(errors.OverloadedError) as too_many:
        admission.admit(0)
    assert "DIGITS_MAX_REQUESTS_IN_FLIGHT" in str(too_many.value)
    assert (admission.requests, admission.bytes) == (2, 100)  # refusals took nothing
    admission.release(60)
    admission.admit(50)
    assert seen == [(1, 60), (2, 100), (1, 40), (2, 90)]
