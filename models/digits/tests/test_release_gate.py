"""The release gate lets the real model through and refuses worse or broken candidates."""

import json

import numpy as np
import pytest

from inference import artifact
from inference.model import Model
from models.digits import config, paths, records, release_gate


@pytest.fixture(name="release", scope="module")
def fixture_release():
    """The current release record."""
    return release_gate.load_release(paths.runfile(paths.RELEASE))


@pytest.fixture(name="gate", scope="module")
def fixture_gate():
    """config.json's gate settings."""
    return config.load(paths.runfile(paths.CONFIG))["gate"]


@pytest.fixture(name="dataset", scope="module")
def fixture_dataset():
    """The built dataset records."""
    return records.read(paths.dataset_path())


def _failed(checks):
    return {check.name: check.detail for check in checks if not check.ok}


def _worse_candidate(path, honest):
    """The real model with noise on its output layer; `honest` records its true accuracy."""
    loaded = artifact.read(paths.model_path())
    tensors = dict(loaded.tensors)
    rng = np.random.default_rng(9)
    noise = rng.integers(-40, 41, size=tensors["dense2.weight"].shape)
    tensors["dense2.weight"] = np.clip(tensors["dense2.weight"] + noise, -127, 127).astype(
        np.int8)
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    artifact.write(path, header, tensors)
    if honest:
        dataset = records.read(paths.dataset_path())
        x, y = records.select(dataset, records.TEST)
        predicted = Model.load(path).predict_proba(x).argmax(axis=1)
        header["metrics"] = dict(header["metrics"],
                                 test_accuracy=round(float(np.mean(predicted == y)), 6))
        artifact.write(path, header, tensors)
    return path


def test_the_built_model_passes_every_check(release, gate, dataset):
    checks = release_gate.evaluate(paths.model_path(), release, gate, dataset)
    assert len(checks) == 7 and _failed(checks) == {}


def test_worse_candidate_with_honest_metrics_is_refused_on_the_headline(
        tmp_path, release, gate, dataset):
    candidate = _worse_candidate(tmp_path / "worse.model", honest=True)
    failed = _failed(release_gate.evaluate(candidate, release, gate, dataset))
    headline = "test_accuracy within 0.5% of the current release"
    assert headline in failed
    assert f"current release {release['headline_value']:.6f}" in failed[headline]
    assert "recorded test accuracy reproduces" not in failed


def test_worse_candidate_claiming_the_old_metrics_is_caught_measuring(
        tmp_path, release, gate, dataset):
    candidate = _worse_candidate(tmp_path / "liar.model", honest=False)
    failed = _failed(release_gate.evaluate(candidate, release, gate, dataset))
    assert "recorded test accuracy reproduces" in failed
    assert f"recorded {release['headline_value']}" in failed["recorded test accuracy reproduces"]


def test_corrupt_candidate_is_refused_with_the_loader_error(tmp_path, release, gate, dataset):
    with open(paths.model_path(), "rb") as src:
        data = src.read()
    candidate = tmp_path / "truncated.model"
    candidate.write_bytes(data[:-10])
    failed = _failed(release_gate.evaluate(candidate, release, gate, dataset))
    assert list(failed) == ["artifact loads and verifies"]
    assert "truncated" in failed["artifact loads and verifies"]


@pytest.mark.parametrize("margin, passes", [(0.004, True), (0.006, False)])
def test_the_headline_may_drop_by_the_relative_tolerance_and_no_more(
        release, gate, dataset, margin, passes):
    # A current release better than the candidate by `margin` (relative).
    better = dict(release, headline_value=release["headline_value"] / (1 - margin))
    failed = _failed(release_gate.evaluate(paths.model_path(), better, gate, dataset))
    assert (failed == {}) is passes


def test_command_line_exit_codes_and_report(tmp_path, capsys):
    assert release_gate.main([]) == 0
    assert "ACCEPTED" in capsys.readouterr().out
    candidate = _worse_candidate(tmp_path / "worse.model", honest=True)
    assert release_gate.main(["--candidate", str(candidate)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  test_accuracy within 0.5% of the current release: candidate" in out
    assert "REFUSED" in out


def test_a_broken_release_record_is_a_usage_error(tmp_path, capsys):
    record = tmp_path / "current.json"
    record.write_text(json.dumps({"headline_metric": "loss", "headline_value": 3}),
                      encoding="utf-8")
    assert release_gate.main(["--release", str(record)]) == 2
    err = capsys.readouterr().err
    assert "'headline_metric' must be 'test_accuracy'" in err and "'headline_value'" in err


def test_gate_as_the_image_release_calls_it_hands_back_the_accuracy_as_a_figure(release):
    checks = release_gate.judge(paths.model_path(), paths.runfile(paths.RELEASE))
    assert all(check.ok for check in checks), _failed(checks)
    figures = {}
    for check in checks:
        assert isinstance(check.figures, dict)
        figures.update(check.figures)
    # A number, not text to parse: the release history records it as it is.
    assert figures == {"test_accuracy": pytest.approx(release["headline_value"], abs=1e-6)}


def test_gate_raises_on_a_broken_release_record(tmp_path):
    broken = tmp_path / "current.json"
    broken.write_text("{}", encoding="utf-8")
    with pytest.raises(release_gate.ReleaseRecordError):
        release_gate.judge(paths.model_path(), str(broken))
