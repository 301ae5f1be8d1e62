"""model_image writes into <name>.spec what the declaration says (modelship/tests/BUILD),
in the form tools/image/build.py accepts, and its files are in the runfiles of <name>."""

import json
import os

from tools.image import build

SPEC = "modelship/tests/toy_image.spec"


def _spec():
    with open(SPEC, encoding="utf-8") as text:
        return json.load(text)


def test_the_spec_carries_every_declared_value():
    spec = _spec()
    assert spec["image_name"] == "modelship-toy"
    assert spec["handler"] == "toy.handler:ToyHandler"
    assert spec["served_name"] == "toy"
    assert spec["size_budget_mb"] == 42
    assert spec["labels"] == {"org.example.team": "platform"}
    assert spec["service"] == "//modelship/tests:toy_service"
    assert spec["declared_by"] == "//modelship/tests:toy_image"
    assert spec["spec_version"] == build.SPEC_VERSION
    assert spec["release_gate"] == "modelship.tests.toy_gate:gate"
    assert spec["release_gate_library"] == "//modelship/tests:toy_gate"
    assert spec["task"]["path"] == "/v1/toy"


def test_the_spec_names_files_by_workspace_path_and_runfiles_path():
    spec = _spec()
    assert spec["model"] == {"path": "modelship/tests/testdata/toy.model",
                             "runfile": "modelship/modelship/tests/testdata/toy.model",
                             "file": "toy.model",
                             "label": "//modelship/tests:testdata/toy.model"}
    # Trained here: no package URL of published files it is converted from (the SBOM's).
    assert spec["model_source"] == ""
    assert spec["contract"]["path"] == "modelship/tests/testdata/openapi.json"
    assert spec["release"]["path"] == "modelship/tests/testdata/current.json"
    assert spec["operating_point"]["path"] == "modelship/tests/testdata/operating_point.json"
    assert spec["requests"]["path"] == "modelship/tests/testdata/requests.json"
    assert spec["task"]["schema"] == {
        "path": "modelship/tests/testdata/results.schema.json",
        "runfile": "modelship/modelship/tests/testdata/results.schema.json"}
    assert [entry["path"] for entry in spec["sources"]] == ["modelship/tests/toy_docs.html.gz"]


def test_every_file_the_spec_names_is_in_the_runfiles():
    spec = build.resolve_spec(build.read_spec(SPEC))
    for entry in (spec.model, spec.contract, spec.release) + spec.sources:
        assert os.path.isfile(entry.local), entry


def test_the_release_files_are_in_the_runfiles_of_the_release_target():
    spec = build.read_spec(SPEC)
    for field, entry in (("operating_point", spec.operating_point),
                         ("requests", spec.requests), ("task.schema", spec.task.schema)):
        assert os.path.isfile(build.runfile(entry.runfile, field)), entry


def test_build_py_accepts_the_spec_and_passes_what_differs_as_build_args():
    spec = build.read_spec(SPEC)
    assert build.build_args(spec) == {"MODEL_FILE": "toy.model",
                                      "MODELSHIP_HANDLER": "toy.handler:ToyHandler"}
