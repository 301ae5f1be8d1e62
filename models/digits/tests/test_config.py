"""config.json is validated whole: every problem named at once, with the fix."""

import copy
import json

import pytest

from models.digits import config, paths


@pytest.fixture(name="settings")
def fixture_settings():
    """The repository config (a fresh copy per test)."""
    with open(paths.runfile(paths.CONFIG), encoding="utf-8") as src:
        return json.load(src)


def test_the_repository_config_is_valid(settings):
    assert config.parse(copy.deepcopy(settings)) == settings


def test_every_problem_is_reported_in_one_error(settings):
    settings["training"]["learning_rate"] = 5
    settings["training"]["batch_size"] = True
    del settings["gate"]["min_test_accuracy"]
    settings["model"]["hidden"] = 3
    settings["extra"] = {}
    with pytest.raises(config.ConfigError) as caught:
        config.parse(settings)
    message = str(caught.value)
    for expected in ("'training.learning_rate' has value 5",
                     "'training.batch_size' has value True; it must be an integer >= 1",
                     "'gate.min_test_accuracy' is missing",
                     "'model.hidden' is not a known setting",
                     "unknown section 'extra'"):
        assert expected in message


@pytest.mark.parametrize("section, name, value", [
    ("dataset", "test_fraction", 0.5), ("dataset", "validation_fraction", 0),
    ("training", "max_epochs", 0), ("gate", "min_test_accuracy", 1.5),
    ("training", "seed", -1), ("model", "hidden_units", "64"),
])
def test_out_of_range_settings_are_refused(settings, section, name, value):
    settings[section][name] = value
    with pytest.raises(config.ConfigError, match=f"'{section}.{name}' has value"):
        config.parse(settings)


def test_a_file_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(config.ConfigError, match="config.json is not valid JSON"):
        config.load(path)
