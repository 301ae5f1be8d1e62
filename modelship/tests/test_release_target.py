"""`<name>.release` is the release tool bound to its image's spec: the gate the
declaration names runs with its figures, and a spec whose gate is broken (cannot
be imported, is no function, returns no checks, figures that are not numbers)
is refused with an error naming the field, exit 2, no traceback."""

import dataclasses
import json

import pytest

from tools.release import cli, errors, imagespec

SPEC = "modelship/tests/toy_image.spec"


def _run(capsys, *argv):
    capsys.readouterr()
    status = cli.main(["--spec-runfile", SPEC, *argv], environ={})
    out, err = capsys.readouterr()
    return status, out, err


def test_gate_runs_the_declared_gate_on_the_declared_model(capsys):
    status, out, err = _run(capsys, "gate")
    assert status == 0, err
    assert "model release gate modelship.tests.toy_gate:gate for " \
           "modelship/tests/testdata/toy.model:" in out
    assert "PASS  model file is not empty" in out and out.rstrip().endswith("ACCEPTED")


def test_the_gate_hands_back_structured_figures():
    spec = imagespec.load(SPEC)
    checks = imagespec.run_gate(spec, imagespec.local(spec, spec.model, "model"))
    assert checks[0].figures["model_bytes"] > 0


def test_a_refusing_gate_fails_with_exit_1(capsys, tmp_path):
    spec_path = _spec_with(tmp_path, release_gate="modelship.tests.toy_gate:refuses")
    status, out, _ = _run_spec(capsys, spec_path, "gate")
    assert status == 1 and "FAIL  never good enough" in out and "REFUSED" in out


@pytest.mark.parametrize("gate, message", [
    ("modelship.tests.no_such_module:gate", "cannot import modelship.tests.no_such_module"),
    ("modelship.tests.toy_gate:missing", "has no function 'missing'"),
    ("modelship.tests.toy_gate:NOT_A_FUNCTION", "has no function 'NOT_A_FUNCTION'"),
    ("modelship.tests.toy_gate:returns_text", "returned str, not a list of checks"),
    ("modelship.tests.toy_gate:figures_are_text", "figures (dict of str to number)"),
])
def test_a_broken_gate_is_named_by_its_spec_field(capsys, tmp_path, gate, message):
    status, _, err = _run_spec(capsys, _spec_with(tmp_path, release_gate=gate), "gate")
    assert status == 2, err
    assert "image spec field 'release_gate'" in err and message in err
    assert "Traceback" not in err


def test_a_gate_that_cannot_run_says_why(capsys, tmp_path):
    spec_path = _spec_with(tmp_path, release_gate="modelship.tests.toy_gate:cannot_run")
    status, _, err = _run_spec(capsys, spec_path, "gate")
    assert status == 1
    assert "the model release gate modelship.tests.toy_gate:cannot_run cannot run: " \
           "FileNotFoundError: no data set beside" in err


def test_a_spec_without_the_release_fields_is_refused_naming_them(capsys, tmp_path):
    with open(SPEC, encoding="utf-8") as text:
        doc = json.load(text)
    for field in ("release_gate", "operating_point"):
        del doc[field]
    path = tmp_path / "old.spec"
    path.write_text(json.dumps(doc), encoding="utf-8")
    status, _, err = _run_spec(capsys, str(path), "gate")
    assert status == 2
    assert "field 'release_gate' is missing" in err
    assert "field 'operating_point' is missing" in err


def test_the_sample_requests_are_checked(tmp_path):
    spec = imagespec.load(SPEC)
    assert imagespec.requests(spec)["task"] == {"values": [1.0, 2.0]}
    bad = tmp_path / "requests.json"
    bad.write_text(json.dumps({"infer": {"inputs": []}, "operating_point": []}),
                   encoding="utf-8")
    broken = dataclasses.replace(spec, requests=dataclasses.replace(
        spec.requests, path="requests.json", runfile=str(bad)))
    with pytest.raises(errors.UsageError) as err:
        imagespec.requests(broken)
    for problem in ("'infer' must be an infer request body",
                    "'operating_point' must be a non-empty list",
                    "'task' (the body POSTed to /v1/toy) is missing"):
        assert problem in str(err.value)


def test_the_repository_defaults_to_the_served_name_and_publish_to_the_spec_archive(
        capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BUILD_WORKING_DIRECTORY", str(tmp_path))
    status, _, err = _run(capsys, "publish")
    assert status == 2
    assert f"--archive {tmp_path}/dist/modelship-toy.oci.tar: no such file" in err


def _spec_with(tmp_path, **changes):
    """The toy spec with `changes`, written to a file; its path."""
    with open(SPEC, encoding="utf-8") as text:
        doc = json.load(text)
    doc.update(changes)
    path = tmp_path / "changed.spec"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def _run_spec(capsys, path, *argv):
    capsys.readouterr()
    status = cli.main(["--spec", path, *argv], environ={})
    out, err = capsys.readouterr()
    return status, out, err
