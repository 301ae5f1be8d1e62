"""The dataset file: documented split sizes, stratified, disjoint, reproducible."""

import numpy as np
import pytest

from models.digits import config, dataset, paths, records


@pytest.fixture(name="built", scope="module")
def fixture_built():
    """The dataset file Bazel built."""
    return records.read(paths.dataset_path())


@pytest.fixture(name="settings", scope="module")
def fixture_settings():
    """config.json's dataset section."""
    return config.load(paths.runfile(paths.CONFIG))["dataset"]


def test_split_sizes_are_the_documented_ones(built):
    counts = {name: int(np.sum(built["split"] == code)) for code, name in enumerate(records.SPLITS)}
    assert counts == {"train": 1079, "validation": 359, "test": 359}  # models/digits/README.md


def test_every_class_is_split_in_the_configured_proportions(built, settings):
    for label in range(records.N_CLASSES):
        splits = built["split"][built["label"] == label]
        n = len(splits)
        assert np.sum(splits == records.TEST) == int(np.floor(n * settings["test_fraction"] + 0.5))
        assert np.sum(splits == records.VALIDATION) == \
            int(np.floor(n * settings["validation_fraction"] + 0.5))


def test_the_file_holds_all_1797_images_with_levels_0_to_16(built):
    assert len(built) == 1797
    assert built["pixels"].min() == 0 and built["pixels"].max() == records.MAX_LEVEL
    assert sorted(np.unique(built["label"])) == list(range(10))


def test_re_exporting_gives_the_same_bytes(built, settings, tmp_path):
    path = tmp_path / "again.npy"
    records.write(path, dataset.export(settings))
    with open(paths.dataset_path(), "rb") as src:
        assert path.read_bytes() == src.read()
    assert np.array_equal(records.read(path), built)


def test_a_different_seed_gives_a_different_split(settings):
    labels = np.repeat(np.arange(10), 20)
    first = dataset.stratified_split(labels, settings["split_seed"], 0.2, 0.2)
    assert np.array_equal(first, dataset.stratified_split(labels, settings["split_seed"],
                                                          0.2, 0.2))
    assert not np.array_equal(first, dataset.stratified_split(labels, settings["split_seed"] + 1,
                                                              0.2, 0.2))


def test_a_file_with_another_layout_is_refused(tmp_path):
    path = tmp_path / "other.npy"
    np.save(path, np.zeros((3, 66), dtype=np.uint8))
    with pytest.raises(records.DatasetError, match="expected a 1-D array"):
        records.read(path)
