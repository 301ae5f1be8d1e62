"""Every label the build writes is declared once (tools/image/labels.py) with its type,
and labels_for refuses one that is not."""

import types

import pytest

from tools.image import build, labels

# What labels_for reads of a spec (model_labels, which reads the rest, is replaced).
SPEC = types.SimpleNamespace(image_name="modelship-toy", served_name="toy",
                             labels={"org.example.team": "platform"})


def test_every_declared_key_has_a_known_type_and_sits_under_a_reserved_prefix():
    for key, entry in labels.KEYS.items():
        assert entry.key == key and entry.doc
        assert entry.kind in labels._PATTERNS  # pylint: disable=protected-access
        assert key.startswith(labels.RESERVED_PREFIXES)


def test_undeclared_keys_under_our_prefixes_are_found():
    assert labels.undeclared({"io.modelship.model.servedname": "x", "org.example.a": "b",
                              labels.SERVED_NAME: "toy"}) == ["io.modelship.model.servedname"]


def test_the_build_writes_the_served_name_label_from_the_spec(monkeypatch):
    monkeypatch.setattr(build, "model_labels",
                        lambda spec, model: {labels.SERVED_NAME: spec.served_name})
    written = build.labels_for(SPEC, ("a" * 40, 0, False), "toy.model", "https://x.example/p")
    assert written[labels.SERVED_NAME] == "toy"
    assert written[labels.CREATED] == "1970-01-01T00:00:00Z"
    assert written["org.example.team"] == "platform"


def test_the_build_refuses_a_label_of_the_wrong_type(monkeypatch):
    monkeypatch.setattr(build, "model_labels",
                        lambda spec, model: {labels.MODEL_VERSION: "not a digest"})
    with pytest.raises(build.BuildError) as err:
        build.labels_for(SPEC, ("a" * 40, 0, False), "toy.model", "https://x.example/p")
    assert f"label {labels.MODEL_VERSION}='not a digest' is not of type sha256" in str(err.value)


RELEASE = {"headline_metric": "top1", "version": "b" * 64, "metrics": {"top1": 0.95}}


def test_the_headline_metric_comes_from_the_artifact_when_it_records_it():
    header = {"metrics": {"top1": 0.97}}
    assert labels.headline_value(header, RELEASE, "b" * 64) == 0.97


def test_the_headline_metric_comes_from_the_release_record_measured_on_this_model():
    # A model measured by its release gate, not at conversion (e.g. MiniLM).
    assert labels.headline_value({"metrics": {"rms": 0.01}}, RELEASE, "b" * 64) == 0.95


def test_a_release_record_of_another_model_gives_no_headline_metric():
    assert labels.headline_value({"metrics": {}}, RELEASE, "c" * 64) is None


def test_the_output_schema_version_is_the_outputs_else_the_whole_schemas():
    assert labels.output_schema_version({"output": {"schema_version": 2},
                                        "schema_version": 1}) == 2
    assert labels.output_schema_version({"output": {"dimension": 384},
                                        "schema_version": 1}) == 1
    assert labels.output_schema_version({"output": {}}) is None
