"""The release gate lets the released model through and refuses worse or wrong ones."""

import dataclasses
import json
import numbers

import numpy as np
import pytest

from inference import artifact
from models.minilm import operating_point, paths, reference_data, release_gate


@pytest.fixture(name="current", scope="module")
def fixture_current():
    """The gate's checks of the built model against release/current.json."""
    return release_gate.judge(paths.model_path(), paths.runfile(paths.RELEASE))


def _failed(checks):
    return [c.name for c in checks if not c.ok]


def _degraded(path, out, step):
    """The artifact at `path` with its int8 layer weights rounded to multiples of `step`."""
    loaded = artifact.read(path)
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    tensors = {}
    for name, view in loaded.tensors.items():
        value = np.asarray(view)
        if value.dtype == np.uint16:
            value = value.view(np.float16)
        if value.dtype == np.int8 and name.startswith("layers."):
            value = (np.rint(value / step) * step).clip(-127, 127).astype(np.int8)
        tensors[name] = np.ascontiguousarray(value)
    artifact.write(out, header, tensors)
    return str(out)


def test_the_released_model_passes_every_check(current):
    assert _failed(current) == []
    assert len(current) == 11
    figures = {k: v for check in current for k, v in check.figures.items()}
    # The figures are the shipped encoder's, which agrees with the reference (integer
    # activations: to the integer floor).
    assert figures["min_cosine_shipped_to_reference"] >= 0.995
    assert figures["shipped_batch_difference"] == 0.0


def test_checks_follow_the_release_tools_contract(current):
    for check in current:
        assert isinstance(check.name, str) and isinstance(check.ok, bool)
        assert isinstance(check.detail, str)
        assert all(isinstance(k, str) and isinstance(v, numbers.Real) and not isinstance(v, bool)
                   for k, v in check.figures.items())
    figures = {k: v for check in current for k, v in check.figures.items()}
    assert figures[release_gate.HEADLINE] >= 0.94
    assert figures["mean_cosine_to_reference"] >= 0.998


def test_the_release_record_reproduces(current):
    with open(paths.runfile(paths.RELEASE), encoding="utf-8") as src:
        release = json.load(src)
    figures = {k: v for check in current for k, v in check.figures.items()}
    assert figures[release_gate.HEADLINE] == release["headline_value"]


@pytest.fixture(name="subset", scope="module")
def fixture_subset():
    """The first 48 sentences of each reference set: enough to tell a bad candidate."""
    data = reference_data.read(paths.runfile(paths.REFERENCE), with_texts=True)
    return reference_data.ReferenceData(**{
        field.name: getattr(data, field.name)[:48] for field in dataclasses.fields(data)})


def _judge_on(subset, model_path):
    release = release_gate.load_release(paths.runfile(paths.RELEASE))
    gate = release_gate.load_gate(paths.runfile(paths.GATE))
    wanted = operating_point.candidate(paths.runfile(paths.OPERATING_POINT))
    return release_gate.evaluate(model_path, release, gate, wanted, subset)


def test_a_coarsely_quantized_model_is_refused(tmp_path, subset):
    worse = _degraded(paths.model_path(), tmp_path / "coarse.model", 24)
    failed = _failed(_judge_on(subset, worse))
    assert "mean cosine to the reference >= 0.998" in failed
    assert "artifact loads and is a sentence encoder" not in failed


def test_another_candidate_than_the_operating_point_is_refused(subset):
    failed = _failed(_judge_on(subset, paths.runfile(paths.candidate_model("fp16"))))
    assert "artifact is the operating point's candidate" in failed
    assert "mean cosine to the reference >= 0.998" not in failed


def test_a_tokenizer_that_differs_from_hugging_face_is_refused(tmp_path, subset):
    loaded = artifact.read(paths.model_path())
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    tensors = {k: np.asarray(v) for k, v in loaded.tensors.items()}
    tokens = bytes(tensors["vocab"]).decode("utf-8").split("\n")
    tokens[1996], tokens[1997] = tokens[1997], tokens[1996]  # "the" and "of" swap ids
    tensors["vocab"] = np.frombuffer("\n".join(tokens).encode("utf-8"), dtype=np.uint8)
    swapped = tmp_path / "swapped.model"
    artifact.write(swapped, header, tensors)
    checks = _judge_on(subset, str(swapped))
    failed = {c.name: c for c in checks if not c.ok}
    assert list(failed) == ["the artifact's tokenizer gives Hugging Face's ids"]
    assert failed["the artifact's tokenizer gives Hugging Face's ids"].figures[
        "tokenizer_mismatches"] > 10


def test_changed_settings_are_refused(tmp_path, subset):
    loaded = artifact.read(paths.model_path())
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    header["tokenizer"] = dict(header["tokenizer"], max_input_chars_per_word=200)
    changed = tmp_path / "changed.model"
    artifact.write(changed, header, {k: np.asarray(v) for k, v in loaded.tensors.items()})
    failed = _failed(_judge_on(subset, str(changed)))
    assert failed == ["settings are the current release's"]


def _gate(**floors):
    gate = release_gate.load_gate(paths.runfile(paths.GATE))
    return dict(gate, **{release_gate.SHIPPED_FLOORS: dict(gate[release_gate.SHIPPED_FLOORS],
                                                           **floors)})


def test_the_shipped_to_reference_floors_are_by_activation_mode():
    floors = release_gate.load_gate(paths.runfile(paths.GATE))[release_gate.SHIPPED_FLOORS]
    assert floors == {"float32": 0.9999, "int8_per_token": 0.995,
                      "uint8_asymmetric_per_token": 0.995}


@pytest.mark.parametrize("activations, agreement, ok", [
    ("float32", 0.99995, True),
    ("float32", 0.996829, False),  # int8-asym's agreement is too low for float activations
    ("uint8_asymmetric_per_token", 0.996829, True),
    ("uint8_asymmetric_per_token", 0.9949, False),
    ("int8_per_token", 0.9920, False),  # int8-dynamic's
])
def test_the_shipped_encoder_is_held_to_its_activation_modes_floor(activations, agreement, ok):
    check = release_gate.shipped_agreement_check(agreement, activations, _gate(), 434)
    assert check.ok is ok
    assert activations in check.name
    assert check.figures == {"min_cosine_shipped_to_reference": agreement}


def _agreement_check(checks):
    return next(c for c in checks if c.name.startswith("the shipped encoder agrees"))


def test_the_floor_comes_from_the_artifacts_settings_not_its_name(tmp_path, subset):
    """int8-asym renamed 'int8' (a float-activation candidate's name) is still held to the
    integer floor, and a float-activation artifact to the float one."""
    loaded = artifact.read(paths.runfile(paths.candidate_model("int8-asym")))
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    header["model"] = dict(header["model"], variant="int8")
    renamed = tmp_path / "renamed.model"
    artifact.write(renamed, header, {k: np.asarray(v) for k, v in loaded.tensors.items()})
    release = release_gate.load_release(paths.runfile(paths.RELEASE))
    # Floors between the two modes' agreement: only the integer-activation one is refused.
    gate = _gate(float32=0.99999, uint8_asymmetric_per_token=0.99999)
    check = _agreement_check(release_gate.evaluate(str(renamed), release, gate, "int8", subset))
    assert "uint8_asymmetric_per_token activations" in check.name
    assert not check.ok, check.detail
    check = _agreement_check(release_gate.evaluate(
        paths.runfile(paths.candidate_model("int8")), release, gate, "int8", subset))
    assert "float32 activations" in check.name
    assert check.ok, check.detail
    refused = _gate(float32=1.0)  # float rounding keeps some cosine below 1
    check = _agreement_check(release_gate.evaluate(
        paths.runfile(paths.candidate_model("int8")), release, refused, "int8", subset))
    assert not check.ok and "float32 activations" in check.name


@pytest.mark.parametrize("floors", [
    None, {"float32": 0.9999}, {"float32": 0.9999, "int8_per_token": 2,
                                "uint8_asymmetric_per_token": 0.995}])
def test_an_invalid_shipped_floor_table_is_refused(tmp_path, floors):
    with open(paths.runfile(paths.GATE), encoding="utf-8") as src:
        gate = json.load(src)
    gate[release_gate.SHIPPED_FLOORS] = floors
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(gate), encoding="utf-8")
    with pytest.raises(release_gate.ReleaseRecordError, match=release_gate.SHIPPED_FLOORS):
        release_gate.load_gate(str(path))


@pytest.mark.parametrize("measured, ok", [(0.952077, True), (0.943, True), (0.942, False)])
def test_the_headline_may_drop_by_the_relative_tolerance_only(measured, ok):
    release = release_gate.load_release(paths.runfile(paths.RELEASE))
    assert release["relative_tolerance"] == 0.01
    check = release_gate.headline_check(measured, 313, dict(release, headline_value=0.952077))
    assert check.ok is ok
    assert check.figures == {release_gate.HEADLINE: measured}


def test_a_corrupt_file_fails_the_first_check(tmp_path):
    with open(paths.model_path(), "rb") as src:
        data = bytearray(src.read(4096))
    path = tmp_path / "truncated.model"
    path.write_bytes(bytes(data))
    checks = release_gate.judge(str(path), paths.runfile(paths.RELEASE))
    assert [c.ok for c in checks] == [False] and "truncated" in checks[0].detail


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(headline_metric="accuracy"), "'headline_metric' must be"),
    (lambda r: r.update(relative_tolerance=2), "'relative_tolerance' must be"),
    (lambda r: r.pop("settings"), "'settings' must hold"),
])
def test_an_invalid_release_record_is_refused_by_field(tmp_path, change, message):
    with open(paths.runfile(paths.RELEASE), encoding="utf-8") as src:
        release = json.load(src)
    change(release)
    path = tmp_path / "current.json"
    path.write_text(json.dumps(release), encoding="utf-8")
    with pytest.raises(release_gate.ReleaseRecordError, match=message):
        release_gate.load_release(str(path))
