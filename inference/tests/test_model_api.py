"""The public API: Model.load, version, metadata, predict_proba, topk."""

import hashlib

import numpy as np
import pytest

from inference import artifact
from inference.model import Model
from models.digits import paths, records


@pytest.fixture(name="images", scope="module")
def fixture_images():
    """Test-split images of the built dataset."""
    x, y = records.select(records.read(paths.dataset_path()), records.TEST)
    return x[:50], y[:50]


def test_version_is_the_sha256_of_the_artifact_file(model):
    with open(paths.model_path(), "rb") as src:
        assert model.version == hashlib.sha256(src.read()).hexdigest()


def test_metadata_describes_input_output_labels_metrics_and_formats(model):
    meta = model.metadata
    assert meta["version"] == model.version
    assert meta["input"]["shape"] == [64] and meta["input"]["image_shape"] == [8, 8]
    assert meta["input"]["value_range"] == [0, 16]
    assert meta["output"] == {"name": "probabilities", "shape": [10], "dtype": "float32",
                              "schema_version": artifact.OUTPUT_SCHEMA_VERSION}
    assert meta["labels"] == [str(d) for d in range(10)] == list(model.labels)
    assert meta["formats"] == {"artifact_format_version": artifact.FORMAT_VERSION,
                               "output_schema_version": artifact.OUTPUT_SCHEMA_VERSION}
    for key in ("test_accuracy", "test_macro_f1", "quantized_agreement", "split_sizes",
                "test_per_class"):
        assert key in meta["metrics"]
    assert len(meta["training"]["code_revision"]) == 64


def test_metadata_is_a_copy_callers_cannot_corrupt(model):
    model.metadata["labels"].append("x")
    model.metadata["metrics"]["test_accuracy"] = 0
    assert len(model.metadata["labels"]) == 10
    assert model.metadata["metrics"]["test_accuracy"] > 0.9


def test_predict_proba_returns_a_distribution_per_row(model, images):
    proba = model.predict_proba(images[0])
    assert proba.shape == (50, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_topk_lists_the_k_most_probable_labels_in_order(model, images):
    x, _ = images
    proba = model.predict_proba(x)
    best = model.topk(x, k=3)
    assert len(best) == len(x)
    for row, ranked in zip(proba, best):
        assert [label for label, _ in ranked] == [str(c) for c in np.argsort(-row)[:3]]
        assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
        assert all(isinstance(p, float) and p == row[int(label)] for label, p in ranked)


def test_topk_with_all_labels_is_a_ranking_of_the_distribution(model, images):
    ranked = model.topk(images[0][:1], k=10)[0]
    assert sorted(label for label, _ in ranked) == list(model.labels)
    assert sum(p for _, p in ranked) == pytest.approx(1, abs=1e-5)


def test_topk_breaks_ties_by_label_order(tmp_path):
    loaded = artifact.read(paths.model_path())
    tensors = dict(loaded.tensors)
    tensors["dense2.weight"] = np.zeros_like(tensors["dense2.weight"])
    tensors["dense2.bias"] = np.zeros_like(tensors["dense2.bias"])  # every class ties
    header = {k: v for k, v in loaded.header.items() if k != "tensors"}
    path = tmp_path / "uniform.model"
    artifact.write(path, header, tensors)
    ranked = Model.load(path).topk(np.zeros((1, 64)), k=10)[0]
    assert [label for label, _ in ranked] == [str(d) for d in range(10)]
    assert all(p == pytest.approx(0.1) for _, p in ranked)


def test_top1_agrees_with_the_labels_on_the_test_images(model, images):
    x, y = images
    predicted = [ranked[0][0] for ranked in model.topk(x, k=1)]
    assert np.mean(np.array(predicted) == y.astype(str)) >= 0.95
