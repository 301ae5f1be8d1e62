"""Fixtures shared by the inference tests: the built model and test images."""

import pytest

from inference.model import Model
from models.digits import paths, records


@pytest.fixture(name="model", scope="module")
def fixture_model():
    """The built model, loaded once for the module."""
    return Model.load(paths.model_path())


@pytest.fixture(name="images", scope="module")
def fixture_images():
    """Test-split images of the built dataset, float64 (N, 64)."""
    x, _ = records.select(records.read(paths.dataset_path()), records.TEST)
    return x
