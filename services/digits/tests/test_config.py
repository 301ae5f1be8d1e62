"""Configuration: defaults with no environment, every bad variable reported at once."""

import os
import subprocess
import sys

import pytest

from serving import config as config_lib
from serving.config import ConfigError
from services.digits.tests import harness


def test_no_configuration_at_all_gives_working_defaults():
    config = harness.config({})
    assert config.port == 8080
    assert config.host == "127.0.0.1"
    assert config.model_name == "digits"
    assert config.cache == "memory"
    assert config.kernel == "inline"
    assert config.expected_version is None
    assert config.model_path.endswith(os.path.join("models", "digits", "digits.model"))


def test_valid_values_are_parsed_to_their_types():
    config = harness.config({
        "MODELSHIP_PORT": "9000", "MODELSHIP_MAX_QUEUE_DELAY_MS": "0.5", "MODELSHIP_CACHE": "REDIS",
        "MODELSHIP_REDIS_URL": "redis://127.0.0.1:6379/0", "MODELSHIP_KERNEL": "thread",
        "MODELSHIP_EXPECTED_VERSION": "a" * 64, "MODELSHIP_MODEL_PATH": "/models/x.model"})
    assert config.port == 9000
    assert config.max_queue_delay_ms == 0.5
    assert config.cache == "redis"
    assert config.kernel == "thread"
    assert config.model_path == "/models/x.model"


def test_every_bad_variable_is_reported_at_once_with_value_and_what_is_accepted():
    with pytest.raises(ConfigError) as caught:
        harness.config({
            "MODELSHIP_PORT": "eighty", "MODELSHIP_MAX_BATCH_SIZE": "0",
            "MODELSHIP_MAX_QUEUE_DELAY_MS": "nan", "MODELSHIP_CACHE": "disk",
            "MODELSHIP_EXPECTED_VERSION": "abc", "MODELSHIP_REDIS_URL": "http://x",
            "MODELSHIP_MAX_BODY_BYTES": "1e6"})
    problems = caught.value.problems
    assert len(problems) == 7
    assert "MODELSHIP_PORT='eighty': expected an integer from 1 to 65535." in problems
    assert "MODELSHIP_MAX_BATCH_SIZE='0': expected an integer from 1 to 4096." in problems
    assert any(p.startswith("MODELSHIP_MAX_QUEUE_DELAY_MS='nan'") for p in problems)
    assert "MODELSHIP_CACHE='disk': expected 'memory', 'redis' or 'off'." in problems
    assert any(p.startswith("MODELSHIP_EXPECTED_VERSION='abc': expected a sha256")
               for p in problems)
    assert any(p.startswith("MODELSHIP_REDIS_URL='http://x'") for p in problems)
    assert any(p.startswith("MODELSHIP_MAX_BODY_BYTES='1e6'") for p in problems)


def test_a_version_or_name_with_a_trailing_newline_keeps_no_newline():
    # Values are stripped, then matched whole: no newline reaches the setting.
    config = harness.config({"MODELSHIP_EXPECTED_VERSION": "a" * 64 + "\n",
                             "MODELSHIP_MODEL_NAME": "digits\n"})
    assert (config.expected_version, config.model_name) == ("a" * 64, "digits")
    with pytest.raises(ConfigError):
        harness.config({"MODELSHIP_EXPECTED_VERSION": "a" * 64 + "\nb"})


def test_an_unknown_modelship_variable_is_an_error_naming_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        harness.config({"MODELSHIP_PROT": "8080"})
    assert caught.value.problems[0].startswith("MODELSHIP_PROT: unknown setting. Known: ")
    assert "MODELSHIP_PORT" in caught.value.problems[0]


def test_settings_that_contradict_each_other_are_reported():
    with pytest.raises(ConfigError) as caught:
        harness.config({"MODELSHIP_CACHE": "redis"})
    assert caught.value.problems == ["MODELSHIP_REDIS_URL is required when MODELSHIP_CACHE=redis."]
    with pytest.raises(ConfigError) as caught:
        harness.config({"MODELSHIP_MAX_BATCH_SIZE": "128", "MODELSHIP_MAX_QUEUE_ROWS": "64"})
    assert "must hold one batch" in caught.value.problems[0]


def test_every_setting_is_described_for_help():
    text = config_lib.describe()
    for setting in config_lib.SETTINGS:
        assert f"MODELSHIP_{setting.name.upper()}" in text


def _run_main(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHIP_")}
    return subprocess.run(harness.SERVE_WITHOUT_NUMPY,
                          env={**clean, "PYTHONPATH": os.pathsep.join(sys.path),
                               "MODELSHIP_HANDLER": harness.HANDLER, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_server_refuses_bad_configuration_with_every_problem_and_no_traceback():
    result = _run_main({"MODELSHIP_PORT": "0", "MODELSHIP_KERNEL": "gpu"})
    assert result.returncode == 2
    assert "MODELSHIP_PORT='0'" in result.stderr
    assert "MODELSHIP_KERNEL='gpu': expected 'thread' or 'inline'." in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_refuses_a_missing_or_unexpected_model_with_a_message(tmp_path):
    missing = _run_main({"MODELSHIP_MODEL_PATH": str(tmp_path / "nope.model")})
    assert missing.returncode == 2
    assert "cannot serve the model" in missing.stderr and "nope.model" in missing.stderr
    assert "Traceback" not in missing.stderr
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(b"MSHIP")
    broken = _run_main({"MODELSHIP_MODEL_PATH": str(truncated)})
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr
    other = _run_main({"MODELSHIP_EXPECTED_VERSION": "0" * 64})
    assert other.returncode == 2
    assert "0" * 64 + " was expected" in other.stderr


def test_help_lists_the_variables():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHIP_")}
    result = subprocess.run([sys.executable, "-m", "serving", "--help"],
                            env={**clean, "PYTHONPATH": os.pathsep.join(sys.path)},
                            capture_output=True, text=True, timeout=60, check=True)
    assert "MODELSHIP_MAX_BATCH_SIZE" in result.stdout
    assert "MODELSHIP_HANDLER" in result.stdout


def test_the_server_without_a_handler_says_how_to_name_one():
    result = _run_main({"MODELSHIP_HANDLER": ""})
    assert result.returncode == 2
    assert "MODELSHIP_HANDLER is not set" in result.stderr
    assert "as package.module:Class" in result.stderr
    result = _run_main({"MODELSHIP_HANDLER": "services.digits.handler:NoSuchHandler"})
    assert result.returncode == 2
    assert "has no class NoSuchHandler" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_limits_on_slow_and_large_requests_have_defaults_that_fit_together():
    config = harness.config({})
    assert config.max_body_bytes_in_flight == 16 << 20
    assert config.max_requests_in_flight == 512
    assert config.body_timeout_s == 10.0
    assert config.max_connections == 1024
    assert config.header_timeout_s == 30.0
    assert config.max_header_bytes == 16384
    assert config.max_body_bytes <= config.max_body_bytes_in_flight
    assert config.max_requests_in_flight < config.max_connections


def test_limits_that_contradict_each_other_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        harness.config({"MODELSHIP_MAX_BODY_BYTES": "2000000",
                        "MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT": "1000000",
                        "MODELSHIP_MAX_CONNECTIONS": "100",
                        "MODELSHIP_MAX_REQUESTS_IN_FLIGHT": "100"})
    problems = caught.value.problems
    assert len(problems) == 2
    assert "the largest body must fit" in problems[0]
    assert "MODELSHIP_MAX_CONNECTIONS=100 must be larger than" in problems[1]
    with pytest.raises(ConfigError) as caught:
        harness.config({"MODELSHIP_BODY_TIMEOUT_S": "0", "MODELSHIP_HEADER_TIMEOUT_S": "61",
                        "MODELSHIP_MAX_HEADER_BYTES": "4096"})
    assert len(caught.value.problems) == 3


SECRET = "hunter2-3b7c"


@pytest.mark.parametrize("url", [
    f"redis://:{SECRET}@cache:notaport/0",
    f"http://user:{SECRET}@cache:6379/0",
    f"redis://:{SECRET}@/0",
    f"redis://default:{SECRET}@cache:6379/zero",
    f"unix:///run/redis.sock?db=x&password={SECRET}",
    SECRET,
])
def test_a_bad_redis_url_is_reported_without_its_password(url):
    with pytest.raises(ConfigError) as caught:
        harness.config({"MODELSHIP_CACHE": "redis", "MODELSHIP_REDIS_URL": url})
    (problem,) = caught.value.problems
    assert problem.startswith("MODELSHIP_REDIS_URL=")
    assert SECRET not in str(caught.value)
    assert "***" in problem or "value not shown" in problem


def test_the_server_never_prints_the_redis_password():
    result = _run_main({"MODELSHIP_CACHE": "redis",
                        "MODELSHIP_REDIS_URL": f"redis://:{SECRET}@cache:port/0"})
    assert result.returncode == 2
    assert "MODELSHIP_REDIS_URL='redis://***@cache:port/0'" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_a_rediss_url_and_its_tls_files_are_accepted(tls_files):
    config = harness.config({
        "MODELSHIP_CACHE": "redis", "MODELSHIP_REDIS_URL": "rediss://:pw@cache.example:6380/0",
        "MODELSHIP_REDIS_CA_FILE": tls_files.ca_cert,
        "MODELSHIP_REDIS_CERT_FILE": tls_files.client_cert,
        "MODELSHIP_REDIS_KEY_FILE": tls_files.client_key})
    assert config.redis_ca_file == tls_files.ca_cert


def test_redis_tls_files_that_cannot_be_used_are_reported(tls_files, tmp_path):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    cases = [
        ({"MODELSHIP_REDIS_URL": "redis://cache:6379/0",
          "MODELSHIP_REDIS_CA_FILE": tls_files.ca_cert},
         "apply to a TLS Redis only"),
        ({"MODELSHIP_REDIS_URL": "rediss://cache:6379/0",
          "MODELSHIP_REDIS_KEY_FILE": tls_files.client_key}, "without MODELSHIP_REDIS_CERT_FILE"),
        ({"MODELSHIP_REDIS_URL": "rediss://cache:6379/0", "MODELSHIP_REDIS_CA_FILE": str(not_pem)},
         "cannot be loaded as PEM"),
        ({"MODELSHIP_REDIS_URL": "rediss://cache:6379/0",
          "MODELSHIP_REDIS_CA_FILE": str(tmp_path / "missing.pem")},
         "expected a readable PEM file"),
    ]
    for env, problem in cases:
        with pytest.raises(ConfigError) as caught:
            harness.config({"MODELSHIP_CACHE": "redis", **env})
        assert problem in str(caught.value), (env, caught.value.problems)
