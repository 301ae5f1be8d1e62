"""The breaking-change gate on real before/after pairs.

Each "before" is the service's checked-in contract (services/digits/openapi.json
and results.schema.json); each "after" is that contract with one edit, the
kind a developer could make. The gate runs as CI runs it (the CLI, by exit
status and output): every kind of break fails it, the same break passes once
the API major version is raised, and additive changes pass.
"""

import copy
import json
import pathlib
import subprocess
import sys

import pytest

CONTRACT = pathlib.Path("services/digits")
GATE = pathlib.Path("tools/api/breaking.py")
BEFORE_OPENAPI = json.loads((CONTRACT / "openapi.json").read_text(encoding="utf-8"))
BEFORE_RESULTS = json.loads((CONTRACT / "results.schema.json").read_text(encoding="utf-8"))


def _schema(doc, name):
    return doc["components"]["schemas"][name]


def _infer_tensor(doc):
    """The float branch of the infer input (the tensor is oneOf integer / float types)."""
    return _schema(doc, "FloatTensor")


# (id, edit of (openapi, results), words the gate must say). Each edit breaks clients.
def _remove_path(api, _):
    del api["paths"]["/v1/predict"]


def _remove_method(api, _):
    api["paths"]["/v2/health/ready"]["post"] = api["paths"]["/v2/health/ready"].pop("get")


def _remove_response_field(api, _):
    del _schema(api, "ServerMetadata")["properties"]["extensions"]
    _schema(api, "ServerMetadata")["required"].remove("extensions")


def _remove_results_field(_, results):
    del results["properties"]["model"]["properties"]["name"]
    results["properties"]["model"]["required"].remove("name")


def _response_field_optional(api, _):
    _schema(api, "InferResponse")["required"].remove("model_name")


def _remove_request_enum_value(api, _):
    _schema(api, "InferRequest")["properties"]["outputs"]["items"]["properties"]["name"][
        "enum"].remove("label")


def _remove_response_enum_value(_, results):
    results["properties"]["format"]["enum"] = ["1.1"]


def _new_required_request_field(api, _):
    predict = _schema(api, "PredictRequest")
    predict["properties"]["normalize"] = {"type": "boolean"}
    predict["required"].append("normalize")


def _optional_request_field_made_required(api, _):
    _schema(api, "PredictRequest")["required"].append("top_k")


def _new_required_parameter(api, _):
    api["paths"]["/v1/predict"]["post"]["parameters"] = [
        {"name": "tenant", "in": "query", "required": True, "schema": {"type": "string"}}]


def _narrow_request_type(api, _):
    _schema(api, "PredictRequest")["properties"]["instances"]["items"]["oneOf"][0] = {
        "type": "integer"}


def _narrow_request_field_type(api, _):
    _schema(api, "InferRequest")["properties"]["id"]["type"] = "integer"


def _narrow_request_bound(api, _):
    _schema(api, "PredictRequest")["properties"]["instances"]["maxItems"] = 64


def _widen_response_type(api, _):
    _schema(api, "ModelReady")["properties"]["ready"]["type"] = ["boolean", "string"]


def _remove_response_header(api, _):
    del api["paths"]["/v2"]["get"]["responses"]["200"]["headers"]["X-API-Version"]


BREAKS = [
    ("removed-path", _remove_path, "/v1/predict: path removed"),
    ("removed-method", _remove_method, "GET /v2/health/ready: method removed"),
    ("removed-response-field", _remove_response_field,
     "GET /v2 200 response.extensions: response field removed"),
    ("removed-results-field", _remove_results_field,
     "results.schema.json: results.model.name: response field removed"),
    ("response-field-no-longer-required", _response_field_optional,
     "response.model_name: response field no longer required"),
    ("removed-request-enum-value", _remove_request_enum_value,
     'request.outputs[].name: enum value "label" removed'),
    ("removed-results-enum-value", _remove_response_enum_value,
     'results.format: enum value "1.0" removed'),
    ("new-required-request-field", _new_required_request_field,
     "POST /v1/predict request.normalize: newly required request field"),
    ("optional-field-now-required", _optional_request_field_made_required,
     "POST /v1/predict request.top_k: newly required request field"),
    ("new-required-parameter", _new_required_parameter,
     "POST /v1/predict query parameter tenant: new required parameter"),
    ("narrowed-type-in-alternatives", _narrow_request_type,
     "POST /v1/predict request.instances[].oneOf[0]: alternative no longer accepted"),
    ("narrowed-type", _narrow_request_field_type,
     "request.id: type narrowed from string to integer"),
    ("narrowed-bound", _narrow_request_bound,
     "request.instances: maxItems narrowed from 1024 to 64"),
    ("widened-response-type", _widen_response_type,
     "response.ready: type widened from boolean to boolean|string"),
    ("removed-response-header", _remove_response_header,
     "GET /v2 200 response header X-API-Version: response header removed"),
]


def _additive_path(api, _):
    api["paths"]["/v1/explain"] = copy.deepcopy(api["paths"]["/v1/predict"])


def _additive_optional_request_field(api, _):
    _schema(api, "PredictRequest")["properties"]["normalize"] = {"type": "boolean"}


def _additive_response_field(api, results):
    _schema(api, "ServerMetadata")["properties"]["build"] = {"type": "string"}
    results["properties"]["latency_ms"] = {"type": "number"}


def _additive_request_enum_value(api, _):
    _infer_tensor(api)["properties"]["datatype"]["enum"].append("BF16")


def _additive_method(api, _):
    api["paths"]["/v1/predict"]["put"] = copy.deepcopy(api["paths"]["/v1/predict"]["post"])


def _additive_looser_bound(api, _):
    _schema(api, "PredictRequest")["properties"]["instances"]["maxItems"] = 4096
    _schema(api, "InferRequest")["properties"]["id"]["type"] = ["string", "integer"]


ADDITIVE = [
    ("new-path", _additive_path),
    ("new-method", _additive_method),
    ("new-optional-request-field", _additive_optional_request_field),
    ("new-response-fields", _additive_response_field),
    ("new-request-enum-value", _additive_request_enum_value),
    ("looser-request-bounds-and-types", _additive_looser_bound),
]


def _write(folder, api, results):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "openapi.json").write_text(json.dumps(api, indent=2), encoding="utf-8")
    if results is not None:
        (folder / "results.schema.json").write_text(json.dumps(results, indent=2),
                                                    encoding="utf-8")
    return folder


def _pair(tmp_path, edit, version=None):
    """(before folder, after folder): the real contract and the contract with `edit`."""
    before = _write(tmp_path / "before", BEFORE_OPENAPI, BEFORE_RESULTS)
    api, results = copy.deepcopy(BEFORE_OPENAPI), copy.deepcopy(BEFORE_RESULTS)
    edit(api, results)
    if version:
        api["info"]["version"] = version
    return before, _write(tmp_path / "after", api, results)


def _gate(*args):
    return subprocess.run([sys.executable, str(GATE), *map(str, args)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("edit,expected", [(e, w) for _, e, w in BREAKS],
                         ids=[i for i, _, _ in BREAKS])
def test_each_kind_of_break_fails_the_gate_and_is_named(tmp_path, edit, expected):
    before, after = _pair(tmp_path, edit)
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout
    assert "BREAKING" in result.stdout
    assert "raise the API major version" in result.stdout


@pytest.mark.parametrize("edit,_words", [(e, w) for _, e, w in BREAKS],
                         ids=[i for i, _, _ in BREAKS])
def test_a_break_passes_when_the_api_major_version_is_raised(tmp_path, edit, _words):
    before, after = _pair(tmp_path, edit, version="2.0")
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted" in result.stdout


def test_a_minor_version_bump_does_not_excuse_a_break(tmp_path):
    before, after = _pair(tmp_path, _remove_path, version="1.1")
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 1
    assert "/v1/predict: path removed" in result.stdout


@pytest.mark.parametrize("edit", [e for _, e in ADDITIVE], ids=[i for i, _ in ADDITIVE])
def test_additive_changes_pass(tmp_path, edit):
    before, after = _pair(tmp_path, edit)
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backward compatible" in result.stdout
    assert "BREAKING" not in result.stdout


def test_an_unchanged_contract_passes(tmp_path):
    before, after = _pair(tmp_path, lambda api, results: None)
    assert _gate("--base", before, "--current", after).returncode == 0


def test_the_version_may_not_go_down(tmp_path):
    before, after = _pair(tmp_path, lambda api, results: None, version="0.9")
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 1
    assert "went down from 1.0 to 0.9" in result.stdout


def test_releases_folder_compares_with_the_highest_version(tmp_path):
    old = copy.deepcopy(BEFORE_OPENAPI)
    old["info"]["version"] = "0.9"
    _remove_path(old, None)  # 0.9 lacked /v1/predict: no break against 1.0
    _write(tmp_path / "releases" / "0.9", old, None)
    _write(tmp_path / "releases" / "1.0", BEFORE_OPENAPI, BEFORE_RESULTS)
    _, after = _pair(tmp_path, _remove_path)
    result = _gate("--releases", tmp_path / "releases", "--current", after)
    assert result.returncode == 1
    assert "releases/1.0)" in result.stdout
    assert "/v1/predict: path removed" in result.stdout


def test_missing_contract_is_a_one_line_error_with_exit_2(tmp_path):
    result = _gate("--base", tmp_path / "nowhere", "--current", CONTRACT)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "nowhere/openapi.json does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_version_is_a_one_line_error_with_exit_2(tmp_path):
    before, after = _pair(tmp_path, lambda api, results: None, version="v1")
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 2
    assert "info.version is 'v1'; it must be MAJOR.MINOR" in result.stderr


def test_broken_json_is_a_one_line_error_with_exit_2(tmp_path):
    before, after = _pair(tmp_path, lambda api, results: None)
    (after / "openapi.json").write_text("{", encoding="utf-8")
    result = _gate("--base", before, "--current", after)
    assert result.returncode == 2
    assert "is not readable JSON" in result.stderr


def test_a_waived_break_passes_with_its_reason_and_a_stale_waiver_fails(tmp_path):
    before, after = _pair(tmp_path, _remove_path)
    waiver = {"base": "1.0", "document": "openapi.json", "where": "/v1/predict",
              "what": "path removed", "why": "nobody could ever call it"}
    accepted = tmp_path / "accepted.json"
    accepted.write_text(json.dumps([waiver]), encoding="utf-8")
    result = _gate("--base", before, "--current", after, "--accepted", accepted)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(waived: nobody could ever call it)" in result.stdout
    # Against an unchanged contract the waiver matches nothing: it must be removed.
    same_before, same_after = _pair(tmp_path / "same", lambda api, results: None)
    stale = _gate("--base", same_before, "--current", same_after, "--accepted", accepted)
    assert stale.returncode == 1
    assert "STALE waiver for API 1.0: /v1/predict: path removed" in stale.stdout
    # A waiver for another released version does not apply.
    accepted.write_text(json.dumps([{**waiver, "base": "0.9"}]), encoding="utf-8")
    assert _gate("--base", before, "--current", after, "--accepted", accepted).returncode == 1


def test_waivers_beside_the_releases_apply_without_being_named(tmp_path):
    before, after = _pair(tmp_path, _remove_path)
    releases = tmp_path / "releases"
    releases.mkdir()
    before.rename(releases / "1.0")
    assert _gate("--releases", releases, "--current", after).returncode == 1
    waiver = {"base": "1.0", "document": "openapi.json", "where": "/v1/predict",
              "what": "path removed", "why": "nobody could ever call it"}
    (releases / "accepted_breaks.json").write_text(json.dumps([waiver]), encoding="utf-8")
    result = _gate("--releases", releases, "--current", after)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(waived: nobody could ever call it)" in result.stdout


def test_relative_paths_are_read_from_the_callers_folder(tmp_path):
    # `bazel run` starts the gate in its runfiles; BUILD_WORKING_DIRECTORY is the caller's.
    _pair(tmp_path, lambda api, results: None)
    result = subprocess.run([sys.executable, str(GATE), "--base", "before", "--current", "after"],
                            capture_output=True, text=True, check=False,
                            env={"BUILD_WORKING_DIRECTORY": str(tmp_path), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
