"""Configuration: defaults with no environment, every bad variable reported at once."""

import os
import subprocess
import sys

import pytest

from services.digits import config as config_lib
from services.digits.config import Config, ConfigError
from services.digits.tests import harness


def test_no_configuration_at_all_gives_working_defaults():
    config = Config.from_environ({})
    assert config.port == 8080
    assert config.host == "127.0.0.1"
    assert config.model_name == "digits"
    assert config.cache == "memory"
    assert config.kernel == "inline"
    assert config.expected_version is None
    assert config.model_path.endswith(os.path.join("models", "digits", "digits.model"))


def test_valid_values_are_parsed_to_their_types():
    config = Config.from_environ({
        "DIGITS_PORT": "9000", "DIGITS_MAX_QUEUE_DELAY_MS": "0.5", "DIGITS_CACHE": "REDIS",
        "DIGITS_REDIS_URL": "redis://127.0.0.1:6379/0", "DIGITS_KERNEL": "thread",
        "DIGITS_EXPECTED_VERSION": "a" * 64, "DIGITS_MODEL_PATH": "/models/x.model"})
    assert config.port == 9000
    assert config.max_queue_delay_ms == 0.5
    assert config.cache == "redis"
    assert config.kernel == "thread"
    assert config.model_path == "/models/x.model"


def test_every_bad_variable_is_reported_at_once_with_value_and_what_is_accepted():
    with pytest.raises(ConfigError) as caught:
        Config.from_environ({
            "DIGITS_PORT": "eighty", "DIGITS_MAX_BATCH_SIZE": "0",
            "DIGITS_MAX_QUEUE_DELAY_MS": "nan", "DIGITS_CACHE": "disk",
            "DIGITS_EXPECTED_VERSION": "abc", "DIGITS_REDIS_URL": "http://x",
            "DIGITS_MAX_BODY_BYTES": "1e6"})
    problems = caught.value.problems
    assert len(problems) == 7
    assert "DIGITS_PORT='eighty': expected an integer from 1 to 65535." in problems
    assert "DIGITS_MAX_BATCH_SIZE='0': expected an integer from 1 to 4096." in problems
    assert any(p.startswith("DIGITS_MAX_QUEUE_DELAY_MS='nan'") for p in problems)
    assert "DIGITS_CACHE='disk': expected 'memory', 'redis' or 'off'." in problems
    assert any(p.startswith("DIGITS_EXPECTED_VERSION='abc': expected a sha256")
               for p in problems)
    assert any(p.startswith("DIGITS_REDIS_URL='http://x'") for p in problems)
    assert any(p.startswith("DIGITS_MAX_BODY_BYTES='1e6'") for p in problems)


def test_a_version_or_name_with_a_trailing_newline_keeps_no_newline():
    # Values are stripped, then matched whole: no newline reaches the setting.
    config = Config.from_environ({"DIGITS_EXPECTED_VERSION": "a" * 64 + "\n",
                                  "DIGITS_MODEL_NAME": "digits\n"})
    assert (config.expected_version, config.model_name) == ("a" * 64, "digits")
    with pytest.raises(ConfigError):
        Config.from_environ({"DIGITS_EXPECTED_VERSION": "a" * 64 + "\nb"})


def test_an_unknown_digits_variable_is_an_error_naming_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        Config.from_environ({"DIGITS_PROT": "8080"})
    assert caught.value.problems[0].startswith("DIGITS_PROT: unknown setting. Known: ")
    assert "DIGITS_PORT" in caught.value.problems[0]


def test_settings_that_contradict_each_other_are_reported():
    with pytest.raises(ConfigError) as caught:
        Config.from_environ({"DIGITS_CACHE": "redis"})
    assert caught.value.problems == ["DIGITS_REDIS_URL is required when DIGITS_CACHE=redis."]
    with pytest.raises(ConfigError) as caught:
        Config.from_environ({"DIGITS_MAX_BATCH_SIZE": "128", "DIGITS_MAX_QUEUE_ROWS": "64"})
    assert "must hold one batch" in caught.value.problems[0]


def test_every_setting_is_described_for_help():
    text = config_lib.describe()
    for setting in config_lib.SETTINGS:
        assert f"DIGITS_{setting.name.upper()}" in text


def _run_main(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    return subprocess.run(harness.SERVE_WITHOUT_NUMPY,
                          env={**clean, "PYTHONPATH": os.pathsep.join(sys.path), **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_server_refuses_bad_configuration_with_every_problem_and_no_traceback():
    result = _run_main({"DIGITS_PORT": "0", "DIGITS_KERNEL": "gpu"})
    assert result.returncode == 2
    assert "DIGITS_PORT='0'" in result.stderr
    assert "DIGITS_KERNEL='gpu': expected 'thread' or 'inline'." in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_refuses_a_missing_or_unexpected_model_with_a_message(tmp_path):
    missing = _run_main({"DIGITS_MODEL_PATH": str(tmp_path / "nope.model")})
    assert missing.returncode == 2
    assert "cannot serve the model" in missing.stderr and "nope.model" in missing.stderr
    assert "Traceback" not in missing.stderr
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(b"MSHIP")
    broken = _run_main({"DIGITS_MODEL_PATH": str(truncated)})
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr
    other = _run_main({"DIGITS_EXPECTED_VERSION": "0" * 64})
    assert other.returncode == 2
    assert "0" * 64 + " was expected" in other.stderr


def test_help_lists_the_variables():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    result = subprocess.run([sys.executable, "-m", "services.digits", "--help"],
                            env={**clean, "PYTHONPATH": os.pathsep.join(sys.path)},
                            capture_output=True, text=True, timeout=60, check=True)
    assert "DIGITS_MAX_BATCH_SIZE" in result.stdout
