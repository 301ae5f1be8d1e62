"""Configuration: the handler named by MODELSHIP_HANDLER, and its defaults."""

import pytest

from serving.config import Config, ConfigError
from serving.tests.toy_handler import ToyHandler

TOY = "serving.tests.toy_handler:ToyHandler"


def test_the_handler_is_imported_from_its_name_and_gives_the_defaults():
    config = Config.from_environ({"MODELSHIP_HANDLER": TOY})
    assert config.handler is ToyHandler
    assert config.model_name == "toy"
    assert config.model_path is None


def test_a_handler_class_passed_in_stands_for_the_variable():
    config = Config.from_environ({"MODELSHIP_MODEL_NAME": "other"}, handler=ToyHandler)
    assert (config.handler, config.model_name) == (ToyHandler, "other")


@pytest.mark.parametrize("value, message", [
    (None, "MODELSHIP_HANDLER is not set"),
    ("serving.tests.toy_handler", "expected package.module:Class"),
    ("serving.tests.no_such_module:ToyHandler", "cannot import serving.tests.no_such_module"),
    ("serving.tests.toy_handler:NoSuch", "has no class NoSuch"),
])
def test_a_missing_or_wrong_handler_is_reported_with_the_fix(value, message):
    environ = {} if value is None else {"MODELSHIP_HANDLER": value}
    with pytest.raises(ConfigError) as caught:
        Config.from_environ(environ)
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_other_problems_are_reported_with_a_handler_problem():
    with pytest.raises(ConfigError) as caught:
        Config.from_environ({"MODELSHIP_PORT": "0"})
    assert len(caught.value.problems) == 2
