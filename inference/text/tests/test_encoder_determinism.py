"""A row's vector does not depend on its batch, its threads or the run: the same bits."""

import subprocess
import sys

import numpy as np
import pytest

from inference import errors
from inference.text import _encoder
from inference.text import encoder as encoder_module
from inference.text.encoder import SentenceEncoder
from inference.text.tests import encoder_fixtures as fx

CANDIDATES = ("fp32", "fp16", "int8", "int8-dynamic", "int8-asym")


@pytest.fixture(name="paths", scope="module")
def fixture_paths(tmp_path_factory):
    """{candidate: path} of the tiny random model."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for candidate in CANDIDATES:
        out[candidate] = str(folder / f"{candidate}.model")
        fx.write_artifact(out[candidate], candidate)
    return out


def _row():
    return fx.random_ids(np.random.default_rng(3), 11)


def _neighbours(seed, count):
    """Long, short and mid-length rows around the row under test."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice([2, 3, 5, 8, 13, 21, 34, fx.DIMS["max_positions"]], size=count)
    return [fx.random_ids(rng, int(n)) for n in lengths]


@pytest.mark.parametrize("candidate", CANDIDATES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_row_alone_equals_the_row_in_any_batch(paths, candidate, threads):
    encoder = SentenceEncoder.load(paths[candidate], threads=threads)
    row = _row()
    alone = encoder.embed_ids([row])[0].tobytes()
    for seed, (before, after) in enumerate([(0, 1), (1, 0), (3, 5), (7, 30), (16, 16)]):
        batch = _neighbours(seed, before) + [row] + _neighbours(seed + 100, after)
        vectors = encoder.embed_ids(batch)
        assert vectors[before].tobytes() == alone, (before, after)


def test_threads_do_not_change_any_bit(paths):
    batch = _neighbours(9, 40)
    one = SentenceEncoder.load(paths["fp32"], threads=1).embed_ids_flat(batch)
    two = SentenceEncoder.load(paths["fp32"], threads=2).embed_ids_flat(batch)
    assert one.tobytes() == two.tobytes()


def test_repeated_runs_give_the_same_bits(paths):
    batch = _neighbours(11, 20)
    encoder = SentenceEncoder.load(paths["int8"])
    first = encoder.embed_ids_flat(batch).tobytes()
    for _ in range(3):
        assert encoder.embed_ids_flat(batch).tobytes() == first
    assert SentenceEncoder.load(paths["int8"]).embed_ids_flat(batch).tobytes() == first


CHILD = r"""
import sys
from inference.text.encoder import SentenceEncoder
sys.stdout.write(SentenceEncoder.load(sys.argv[1]).embed_ids_flat(
    [[2, 7, 8, 9, 3], [2, 30, 3]]).tobytes().hex())
"""


def test_another_process_gives_the_same_bits(paths):
    here = SentenceEncoder.load(paths["fp16"]).embed_ids_flat([[2, 7, 8, 9, 3], [2, 30, 3]])
    child = subprocess.run([sys.executable, "-c", CHILD, paths["fp16"]], check=True,
                           capture_output=True, text=True, env=None)
    assert child.stdout == here.tobytes().hex()


def test_the_kernels_run_with_the_best_instruction_set():
    assert _encoder.isa() in ("avx512", "avx2", "x86-64")


def test_chunked_batches_give_the_same_bits(paths, monkeypatch):
    """A big batch is embedded in chunks of whole sequences: no bit changes."""
    batch = _neighbours(13, 30)
    encoder = SentenceEncoder.load(paths["fp32"], threads=2)
    whole = encoder.embed_ids_flat(batch).tobytes()
    monkeypatch.setattr(encoder_module, "_MAX_TOKENS_PER_CALL", 25)
    assert encoder.embed_ids_flat(batch).tobytes() == whole
    monkeypatch.setattr(encoder_module, "_MAX_TOKENS_PER_CALL", 1)  # one sequence per call
    assert encoder.embed_ids_flat(batch).tobytes() == whole
    with pytest.raises(errors.InputError, match=r"sequences\[30\]\[1\] is -5"):
        encoder.embed_ids(batch + [[2, -5, 3]])


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_a_team_of_threads_on_one_sequence_changes_no_bit(paths, candidate):
    """Few sequences: threads share each step (columns, heads, rows) of one pass."""
    rows = [fx.random_ids(np.random.default_rng(5), fx.DIMS["max_positions"]), _row()]
    expected = SentenceEncoder.load(paths[candidate], threads=1).embed_ids_flat(rows).tobytes()
    for threads in (2, 3, 4, 8):
        encoder = SentenceEncoder.load(paths[candidate], threads=threads)
        assert encoder.embed_ids_flat(rows).tobytes() == expected, threads
        assert encoder.embed_ids_flat(rows[:1]).tobytes() == expected[:4 * fx.DIMS["hidden"]]
