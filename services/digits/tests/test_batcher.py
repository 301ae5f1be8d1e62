"""Dynamic batching with the real model: coalescing, bounds, isolation of failures."""

import asyncio
import math

import pytest

from inference import errors as inference_errors
from inference.model import Model
from serving.batcher import Batcher
from serving.errors import NotReadyError, OverloadedError
from services.digits.tests import harness


@pytest.fixture(name="model", scope="module")
def fixture_model():
    """The real model."""
    return Model.load(harness.model_path())


class Recorder:
    """Wraps predict, recording the rows of each kernel call."""

    def __init__(self, predict):
        self.predict = predict
        self.calls = []

    def __call__(self, x):
        self.calls.append(len(x))
        return self.predict(x)


def _images(n, seed=0):
    pixels, _ = harness.images(n, seed)
    return [[float(v) for v in row] for row in pixels]


def _batcher(predict, **overrides):
    settings = {"max_batch_size": 64, "max_queue_delay_s": 0.0, "max_queue_rows": 1024,
                "retry_after_s": 1, "kernel": "thread"}
    settings.update(overrides)
    return Batcher(predict, **settings)


@pytest.mark.parametrize("kernel", ["thread", "inline"])
def test_concurrent_requests_share_kernel_calls_and_get_their_own_rows(model, kernel):
    recorder = Recorder(model.predict_proba)
    x = _images(40)

    async def run():
        batcher = _batcher(recorder, kernel=kernel)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(x[i:i + 1]) for i in range(40)))
        await batcher.drain(5)
        return results

    results = asyncio.run(run())
    assert sum(recorder.calls) == 40
    assert len(recorder.calls) < 40  # coalesced
    assert [row for result in results for row in result] == model.predict_proba(x)


def test_a_batch_never_exceeds_max_batch_size(model):
    recorder = Recorder(model.predict_proba)
    x = _images(100)

    async def run():
        batcher = _batcher(recorder, max_batch_size=16, max_queue_delay_s=0.05)
        batcher.start()
        await asyncio.gather(*(batcher.submit(x[i:i + 5]) for i in range(0, 100, 5)))
        await batcher.drain(5)

    asyncio.run(run())
    assert max(recorder.calls) <= 16
    assert sum(recorder.calls) == 100


def test_max_queue_delay_waits_for_a_batch_to_fill(model):
    recorder = Recorder(model.predict_proba)
    x = _images(8)

    async def run():
        batcher = _batcher(recorder, max_batch_size=8, max_queue_delay_s=5.0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(x[:1]))
        await asyncio.sleep(0)
        rest = [batcher.submit(x[i:i + 1]) for i in range(1, 8)]
        # The batch fills long before the 5 s delay: all eight go in one call.
        await asyncio.wait_for(asyncio.gather(first, *rest), timeout=4)
        await batcher.drain(5)

    asyncio.run(run())
    assert recorder.calls == [8]


def test_a_full_queue_refuses_with_overloaded_instead_of_growing(model):
    x = _images(10)

    async def run():
        batcher = _batcher(model.predict_proba, max_batch_size=4, max_queue_rows=4,
                           max_queue_delay_s=10.0, retry_after_s=7)
        batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(x[:3]))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as caught:
            await batcher.submit(x[3:5])
        assert caught.value.retry_after_s == 7
        assert batcher.queued_rows == 3
        await batcher.drain(5)
        return await waiting

    result = asyncio.run(run())
    assert len(result) == 3 and all(len(row) == 10 for row in result)


def test_one_bad_request_in_a_batch_fails_alone(model):
    x = _images(3)
    bad = [list(x[0])]
    bad[0][5] = math.nan

    async def run():
        batcher = _batcher(model.predict_proba)
        batcher.start()
        results = await asyncio.gather(batcher.submit(x[:1]), batcher.submit(bad),
                                       batcher.submit(x[1:3]), return_exceptions=True)
        await batcher.drain(5)
        return results

    good1, failed, good2 = asyncio.run(run())
    assert isinstance(failed, inference_errors.InputError)
    assert len(good1) == 1 and len(good2) == 2


def test_after_drain_new_requests_are_refused(model):
    async def run():
        batcher = _batcher(model.predict_proba)
        batcher.start()
        await batcher.drain(1)
        with pytest.raises(NotReadyError):
            await batcher.submit(_images(1))

    asyncio.run(run())
