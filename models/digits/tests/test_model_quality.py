"""The served model meets its recorded quality, measured through the public API."""

import numpy as np
import pytest

from inference import artifact
from inference.model import Model
from models.digits import config, metrics, paths, records, train


@pytest.fixture(name="model", scope="module")
def fixture_model():
    """The built model, loaded once for the module."""
    return Model.load(paths.model_path())


@pytest.fixture(name="dataset", scope="module")
def fixture_dataset():
    """The built dataset records."""
    return records.read(paths.dataset_path())


@pytest.fixture(name="gate", scope="module")
def fixture_gate():
    """config.json's gate settings."""
    return config.load(paths.runfile(paths.CONFIG))["gate"]


def _served_predictions(model, x):
    return np.array(model.labels)[model.predict_proba(x).argmax(axis=1)].astype(int)


def test_test_split_accuracy_meets_the_gate_and_matches_the_record(model, dataset, gate):
    x, y = records.select(dataset, records.TEST)
    accuracy = metrics.accuracy(y, _served_predictions(model, x))
    assert accuracy >= gate["min_test_accuracy"] >= 0.95
    assert accuracy == pytest.approx(model.metadata["metrics"]["test_accuracy"], abs=1e-6)


def test_macro_f1_and_per_class_figures_match_the_record(model, dataset):
    x, y = records.select(dataset, records.TEST)
    predicted = _served_predictions(model, x)
    recorded = model.metadata["metrics"]
    assert metrics.macro_f1(y, predicted, 10) == pytest.approx(recorded["test_macro_f1"],
                                                               abs=1e-6)
    assert metrics.per_class(y, predicted, list(model.labels)) == recorded["test_per_class"]


def test_quantized_model_agrees_with_the_float_model(model, dataset, gate):
    # Retrain in process (deterministic) to get the float weights the artifact
    # was quantized from, and compare top-1 on the test split with the served model.
    settings = config.load(paths.runfile(paths.CONFIG))
    x_train, y_train = records.select(dataset, records.TRAIN)
    x_val, y_val = records.select(dataset, records.VALIDATION)
    center, scale = x_train.mean(axis=0), float(records.MAX_LEVEL)
    params, _, _ = train.train(settings, (x_train - center) / scale, y_train,
                               (x_val - center) / scale, y_val)
    folded = train.fold_preprocessing(params, center, scale)
    x_test, _ = records.select(dataset, records.TEST)
    agreement = metrics.accuracy(train.float_predict(folded, x_test),
                                 model.predict_proba(x_test).argmax(axis=1))
    assert agreement >= gate["min_quantized_agreement"] >= 0.995
    assert model.metadata["metrics"]["quantized_agreement"] >= gate["min_quantized_agreement"]


def test_the_test_split_is_not_used_to_choose_the_model(model):
    training = model.metadata["training"]
    assert "validation" in training["selection"]
    assert model.metadata["metrics"]["split_sizes"] == {"train": 1079, "validation": 359,
                                                        "test": 359}


def test_quantization_error_is_at_most_half_a_step():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(64, 12)) * rng.uniform(0.01, 3, size=12)
    q, scale = train.quantize(w)
    assert q.dtype == np.int8 and np.abs(q).max() == artifact.INT8_LIMIT
    error = np.abs(q * scale.astype(np.float64) - w)
    assert np.all(error <= scale * 0.5 + 1e-7)
