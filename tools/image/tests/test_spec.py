"""build.py reads the image spec model_image writes, and refuses a bad one with
one message that names every wrong field, without a traceback."""

import copy
import json
import os
import subprocess
import sys

import pytest

from tools.image import build

GOOD = {
    "spec_version": build.SPEC_VERSION,
    "declared_by": "//services/toy:image",
    "image_name": "modelship-toy",
    "handler": "services.toy.handler:ToyHandler",
    "served_name": "toy",
    "service": "//services/toy:server",
    "model": {"path": "models/toy/toy.model", "runfile": "ws/models/toy/toy.model",
              "file": "toy.model"},
    "contract": {"path": "services/toy/openapi.json", "runfile": "ws/services/toy/openapi.json"},
    "release": {"path": "models/toy/release/current.json",
                "runfile": "ws/models/toy/release/current.json"},
    "size_budget_mb": 60,
    "labels": {"org.example.team": "platform"},
    "sources": [{"path": "services/toy/api/docs.html.gz",
                 "runfile": "ws/services/toy/api/docs.html.gz"}],
    "release_gate": "models.toy.gate:gate",
    "release_gate_library": "//models/toy:gate",
    "operating_point": {"path": "models/toy/release/operating_point.json",
                        "runfile": "ws/models/toy/release/operating_point.json"},
    "requests": {"path": "services/toy/requests.json",
                 "runfile": "ws/services/toy/requests.json"},
    "task": {"path": "/v1/toy", "schema": {"path": "services/toy/results.schema.json",
                                           "runfile": "ws/services/toy/results.schema.json"}},
}


def _with(**changes):
    doc = copy.deepcopy(GOOD)
    for field, value in changes.items():
        if value is None:
            doc.pop(field)
        else:
            doc[field] = value
    return doc


def test_the_model_target_and_source_are_read_for_the_sbom():
    spec = build.parse_spec(_with(model=dict(GOOD["model"], label="//models/toy:model"),
                                  model_source="pkg:pypi/toy-weights@1.2"))
    assert (spec.model_target, spec.model_source) == ("//models/toy:model",
                                                      "pkg:pypi/toy-weights@1.2")
    assert (build.parse_spec(GOOD).model_target, build.parse_spec(GOOD).model_source) == ("", "")


def test_a_good_spec_is_read_as_declared():
    spec = build.parse_spec(GOOD)
    assert (spec.image_name, spec.handler, spec.served_name, spec.size_budget_mb) == (
        "modelship-toy", "services.toy.handler:ToyHandler", "toy", 60)
    assert spec.model.path == "models/toy/toy.model" and spec.model_file == "toy.model"
    assert spec.labels == {"org.example.team": "platform"}
    assert [entry.path for entry in spec.sources] == ["services/toy/api/docs.html.gz"]
    assert build.build_args(spec) == {"MODEL_FILE": "toy.model",
                                      "MODELSHIP_HANDLER": "services.toy.handler:ToyHandler"}


def test_the_release_fields_are_read_as_declared():
    spec = build.parse_spec(GOOD)
    assert (spec.release_gate, spec.release_gate_library) == ("models.toy.gate:gate",
                                                              "//models/toy:gate")
    assert spec.operating_point.path == "models/toy/release/operating_point.json"
    assert spec.requests.runfile == "ws/services/toy/requests.json"
    assert (spec.task.path, spec.task.schema.path) == ("/v1/toy",
                                                       "services/toy/results.schema.json")
    assert spec.model_in_image == "opt/modelship/model/toy.model"


def test_a_spec_without_a_contract_or_a_task_check_is_accepted():
    assert build.parse_spec(_with(contract=None)).contract is None
    assert build.parse_spec(_with(task=None)).task is None


@pytest.mark.parametrize("field", ["release_gate", "release_gate_library", "operating_point",
                                   "requests"])
def test_a_spec_without_a_release_field_names_it_and_where_to_declare_it(field):
    with pytest.raises(build.BuildError) as err:
        build.parse_spec(_with(**{field: None}), "old.spec")
    assert f"field {field!r} is missing (a release field, new in spec_version 2: declare " \
           f"it in model_image, //modelship:defs.bzl)" in str(err.value)


def test_a_version_1_spec_is_refused_naming_the_version_and_the_release_fields():
    old = _with(release_gate=None, release_gate_library=None, operating_point=None,
                requests=None, task=None, spec_version=1)
    with pytest.raises(build.BuildError) as err:
        build.parse_spec(old, "old.spec")
    message = str(err.value)
    assert f"field 'spec_version' must be {build.SPEC_VERSION}" in message
    assert all(f"field {field!r} is missing" in message
               for field in ("release_gate", "release_gate_library", "operating_point",
                             "requests"))


@pytest.mark.parametrize("changes, field", [
    ({"handler": "services/toy/handler.py"}, "'handler'"),
    ({"handler": None}, "'handler' is missing"),
    ({"image_name": "Modelship Toy"}, "'image_name'"),
    ({"size_budget_mb": 0}, "'size_budget_mb'"),
    ({"size_budget_mb": "60"}, "'size_budget_mb'"),
    ({"model": {"path": "models/toy/toy.model", "runfile": "ws/x"}}, "'model' must have a 'file'"),
    ({"model": "models/toy/toy.model"}, "'model'"),
    ({"release": {"path": "../outside.json", "runfile": "ws/x"}}, "'release'"),
    ({"labels": {"org.opencontainers.image.title": "other"}}, "org.opencontainers.image.title"),
    ({"spec_version": 99}, "'spec_version'"),
    ({"release_gate": "models/toy/gate.py"}, "field 'release_gate' must be the model release "
                                             "gate as 'package.module:function'"),
    ({"release_gate": "models.toy.gate"}, "'release_gate'"),
    ({"release_gate_library": ""}, "'release_gate_library' must be a non-empty string"),
    ({"operating_point": "op.json"}, "'operating_point'"),
    ({"requests": {"path": "/abs/requests.json", "runfile": "ws/r"}}, "'requests'"),
    ({"task": {"path": "v1/toy", "schema": GOOD["task"]["schema"]}},
     "field 'task': 'path' must be a URL path starting with '/'"),
    ({"task": {"path": "/v1/toy"}}, "field 'task' must be null or an object with 'path'"),
    ({"handlr": "a.b:C"}, "'handlr' is unknown"),
])
def test_a_bad_field_is_named_with_what_it_must_be(changes, field):
    with pytest.raises(build.BuildError) as err:
        build.parse_spec(_with(**changes), "toy.spec")
    assert str(err.value).startswith("toy.spec is not a valid image spec:")
    assert field in str(err.value)


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(build.BuildError) as err:
        build.parse_spec(_with(handler="nope", size_budget_mb=-1, served_name=""))
    assert all(f"'{field}'" in str(err.value)
               for field in ("handler", "size_budget_mb", "served_name"))


def _run_build(tmp_path, *args):
    env = dict(os.environ, BUILD_WORKING_DIRECTORY=str(tmp_path))
    return subprocess.run([sys.executable, "-m", "tools.image.build", *args], env=env,
                          capture_output=True, text=True, check=False)


def test_build_refuses_a_bad_spec_file_naming_the_field_without_a_traceback(tmp_path):
    (tmp_path / "bad.spec").write_text(json.dumps(_with(handler="toy")), encoding="utf-8")
    proc = _run_build(tmp_path, "--spec", "bad.spec", "--target", "production")
    assert proc.returncode == 1, proc.stderr
    assert "bad.spec is not a valid image spec" in proc.stderr
    assert "field 'handler' must be 'package.module:Class'" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_build_refuses_a_spec_that_is_not_json_or_missing(tmp_path):
    (tmp_path / "broken.spec").write_text("{not json", encoding="utf-8")
    proc = _run_build(tmp_path, "--spec", "broken.spec")
    assert proc.returncode == 1 and "is not JSON" in proc.stderr, proc.stderr
    proc = _run_build(tmp_path, "--spec", "missing.spec")
    assert proc.returncode == 1 and "no image spec at" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_build_without_a_spec_is_a_usage_error(tmp_path):
    proc = _run_build(tmp_path)
    assert proc.returncode == 2 and "--spec" in proc.stderr, proc.stderr


def test_a_file_the_spec_names_outside_the_runfiles_is_named(tmp_path):
    (tmp_path / "good.spec").write_text(json.dumps(GOOD), encoding="utf-8")
    proc = _run_build(tmp_path, "--spec", "good.spec")
    assert proc.returncode == 1, proc.stderr
    assert "spec field 'model': ws/models/toy/toy.model is not in this program's runfiles" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
