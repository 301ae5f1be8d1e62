"""The release gate judges the built model against the release record."""

import json

import pytest

from models.flowers import paths, release_gate

RECORD = "models/flowers/release/current.json"


def _record(tmp_path, **fields):
    path = tmp_path / "current.json"
    path.write_text(json.dumps(fields), encoding="utf-8")
    return str(path)


def test_the_built_model_passes_the_committed_record():
    checks = release_gate.judge(paths.model_path(), RECORD)
    assert [c.ok for c in checks] == [True, True, True], checks
    assert checks[-1].figures["test_accuracy"] >= 0.9


def test_a_floor_above_the_measured_accuracy_refuses_it(tmp_path):
    checks = release_gate.judge(paths.model_path(), _record(tmp_path, min_test_accuracy=1))
    assert not checks[-1].ok and checks[-1].name == "test_accuracy >= 1", checks


def test_a_damaged_artifact_is_refused(tmp_path):
    broken = tmp_path / "flowers.model"
    broken.write_bytes(b"not a model")
    checks = release_gate.judge(str(broken), RECORD)
    assert [c.ok for c in checks] == [False], checks


def test_a_record_without_a_floor_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="min_test_accuracy"):
        release_gate.judge(paths.model_path(), _record(tmp_path))
