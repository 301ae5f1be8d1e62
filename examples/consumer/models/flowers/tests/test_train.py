"""The flowers training: deterministic data, a model that beats chance, the same bytes twice."""

import hashlib

from inference import artifact
from models.flowers import data, paths, train


def test_the_data_set_is_the_same_every_time():
    assert data.generate() == data.generate()
    rows = data.generate()
    assert len(rows) == len(data.LABELS) * data.PER_SPECIES
    assert all(0 <= value <= data.MAX_LEVEL for row, _ in rows for value in row)


def test_training_is_deterministic(tmp_path):
    train.main(["--out", str(tmp_path / "a.model")])
    train.main(["--out", str(tmp_path / "b.model")])
    digest = [hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
              for name in ("a.model", "b.model")]
    assert digest[0] == digest[1]


def test_the_built_model_is_accurate_and_labelled():
    loaded = artifact.read(paths.model_path())
    assert loaded.header["model"]["name"] == "flowers"
    assert loaded.header["labels"] == list(data.LABELS)
    assert loaded.header["metrics"]["test_accuracy"] >= 0.9


def test_a_label_without_rows_is_refused():
    try:
        train.centroids([([1, 2, 3, 4], 0)], 2)
    except ValueError as err:
        assert "counts are [1, 0]" in str(err)
    else:
        raise AssertionError("no error")
