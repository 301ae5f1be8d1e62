"""Same input, same output: across calls, loads, batch sizes, neighbours and threads.

Every comparison is bitwise (np.array_equal), not approximate.
"""

import threading

import numpy as np
import pytest

from inference.model import Model
from models.digits import paths


def test_repeated_calls_and_reloads_give_identical_bits(model, images):
    first = model.predict_proba(images)
    assert np.array_equal(model.predict_proba(images), first)
    assert np.array_equal(Model.load(paths.model_path()).predict_proba(images), first)


@pytest.mark.parametrize("batch", [1, 2, 7, 8, 31, 256])
def test_a_row_gets_the_same_bits_at_every_batch_size(model, images, batch):
    alone = np.vstack([model.predict_proba(images[i:i + 1]) for i in range(batch)])
    assert np.array_equal(model.predict_proba(images[:batch]), alone)


def test_a_row_does_not_depend_on_its_neighbours_or_position(model, images):
    rng = np.random.default_rng(11)
    probe = images[:20]
    expected = model.predict_proba(probe)
    for _ in range(5):
        noise = rng.integers(0, 17, size=(40, 64)).astype(np.float64)
        mixed = np.vstack([noise, probe])
        order = rng.permutation(len(mixed))
        shuffled = model.predict_proba(mixed[order])
        where = np.argsort(order)[len(noise):]  # positions of the probe rows
        assert np.array_equal(shuffled[where], expected)


def test_concurrent_threads_get_the_same_bits_as_one(model, images):
    expected = model.predict_proba(images)
    results = [None] * 4

    def work(slot):
        for _ in range(20):
            results[slot] = model.predict_proba(images)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(result, expected) for result in results)
