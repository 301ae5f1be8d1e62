"""Which labels make an image releasable."""

from tools.release import labels

SHA = "1234567890abcdef1234567890abcdef12345678"
GOOD = {labels.REVISION: SHA, labels.VERSION: SHA[:12], labels.CREATED: "2026-12-01T00:00:00Z",
        labels.MODEL_NAME: "digits-mlp", labels.MODEL_VERSION: "ab" * 32,
        labels.MODEL_METRIC: "test_accuracy=0.98", labels.API_VERSION: "1.0"}


def test_complete_clean_labels_pass():
    assert not labels.problems(GOOD)
    assert labels.metrics(GOOD) == {"test_accuracy": 0.98}


def test_every_missing_label_is_named():
    found = labels.problems({})
    assert len(found) == len(labels.REQUIRED)
    assert all(any(key in problem for problem in found) for key in labels.REQUIRED)


def test_a_dirty_tree_unstamped_build_or_mismatched_version_is_refused():
    assert "dirty tree" in " ".join(labels.problems(dict(GOOD, **{
        labels.VERSION: SHA[:12] + "-dirty"})))
    assert "unstamped" in " ".join(labels.problems(dict(GOOD, **{
        labels.REVISION: "0" * 40, labels.VERSION: "0" * 12})))
    assert "does not match" in " ".join(labels.problems(dict(GOOD, **{
        labels.VERSION: "ffffffffffff"})))


def test_a_revision_or_model_version_with_a_trailing_newline_is_refused():
    found = " ".join(labels.problems(dict(GOOD, **{labels.REVISION: SHA + "\n",
                                                   labels.MODEL_VERSION: "ab" * 32 + "\n"})))
    assert "is not a 40-hex git SHA" in found
    assert "is not a sha256 hex digest" in found


def test_the_keys_are_those_declared_once_in_tools_image_labels():
    from tools.image import labels as declared  # pylint: disable=import-outside-toplevel
    assert labels.SERVED_NAME == declared.SERVED_NAME == "io.modelship.model.served-name"
    assert all(key in declared.KEYS for key in labels.REQUIRED + (labels.SERVED_NAME,))


def test_a_label_not_of_its_declared_type_is_named_with_its_type():
    found = labels.type_problems(dict(GOOD, **{labels.CREATED: "yesterday",
                                               labels.MODEL_METRIC: "accuracy: high",
                                               labels.SERVED_NAME: " digits"}))
    assert len(found) == 3
    assert any(labels.CREATED in p and "is not of type time" in p for p in found)
    assert any(labels.MODEL_METRIC in p and "is not of type metric" in p for p in found)
    assert any(labels.SERVED_NAME in p and "is not of type text" in p for p in found)
    assert not labels.type_problems(dict(GOOD, **{labels.SERVED_NAME: "digits",
                                                  "org.example.team": "x y"}))


def test_an_image_declared_without_its_contract_is_told_how_to_get_the_api_version():
    found = labels.problems({key: value for key, value in GOOD.items()
                             if key != labels.API_VERSION})
    assert len(found) == 1
    assert found[0].startswith(f"label {labels.API_VERSION} is missing")
    assert "model_image as `contract`" in found[0]
