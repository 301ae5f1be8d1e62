"""Registry settings from the environment and flags: every problem at once, and
credentials that never reach a repr or a log."""

import base64
import json

import pytest

from tools.release import errors, settings


def _load(environ, **flags):
    """settings.load as an image's release target calls it (with a default repository)."""
    return settings.load(environ, default="team/model", **flags)


def test_defaults_use_the_embedded_registry_and_the_image_s_repository():
    loaded = settings.load({}, default=settings.default_repository("digits"))
    assert loaded.registry is None
    assert loaded.repository == "modelship/digits"
    assert loaded.credentials is None


def test_without_an_image_the_repository_is_required():
    with pytest.raises(errors.UsageError) as raised:
        settings.load({})
    assert "no repository: set MODELSHIP_REPOSITORY or --repository" in str(raised.value)
    assert settings.load({"MODELSHIP_REPOSITORY": "team/x"}).repository == "team/x"


def test_flags_override_the_environment():
    loaded = _load({"MODELSHIP_REGISTRY": "a.example:5000",
                    "MODELSHIP_REPOSITORY": "x/y"},
                   registry="127.0.0.1:6000", repository="team/digits")
    assert (loaded.registry, loaded.repository) == ("127.0.0.1:6000", "team/digits")


def test_loopback_registries_speak_http_others_https():
    assert _load({"MODELSHIP_REGISTRY": "127.0.0.1:5000"}).tls is False
    assert _load({"MODELSHIP_REGISTRY": "localhost:5000"}).tls is False
    assert _load({"MODELSHIP_REGISTRY": "registry.example.com"}).tls is True
    assert _load({"MODELSHIP_REGISTRY": "registry.example.com",
                  "MODELSHIP_REGISTRY_TLS": "0"}).tls is False


def test_every_problem_is_reported_at_once():
    with pytest.raises(errors.UsageError) as raised:
        _load({"MODELSHIP_REGISTRY": "not a host", "MODELSHIP_REPOSITORY": "Upper/Case",
               "MODELSHIP_REGISTRY_TLS": "maybe", "MODELSHIP_REGISTRY_USER": "u",
               "MODELSHIP_REGISTRY_RETRIES": "-1"})
    message = str(raised.value)
    for part in ("'not a host'", "'Upper/Case'", "MODELSHIP_REGISTRY_TLS has value 'maybe'",
                 "MODELSHIP_REGISTRY_PASSWORD", "MODELSHIP_REGISTRY_RETRIES has value '-1'"):
        assert part in message


def test_credentials_come_from_a_containers_auth_file(tmp_path):
    auth = tmp_path / "auth.json"
    token = base64.b64encode(b"ci-bot:pa:ss").decode()
    auth.write_text(json.dumps({"auths": {"127.0.0.1:5000": {"auth": token}}}))
    loaded = _load({"MODELSHIP_REGISTRY": "127.0.0.1:5000",
                    "MODELSHIP_REGISTRY_AUTH_FILE": str(auth)})
    assert loaded.credentials.user == "ci-bot"
    assert loaded.credentials.password == "pa:ss"
    with pytest.raises(errors.UsageError, match="has no entry for 127.0.0.1:6000"):
        _load({"MODELSHIP_REGISTRY": "127.0.0.1:6000",
               "MODELSHIP_REGISTRY_AUTH_FILE": str(auth)})


def test_an_unreadable_auth_file_is_named_without_its_content(tmp_path):
    auth = tmp_path / "auth.json"
    auth.write_text("{secret-ish garbage")
    with pytest.raises(errors.UsageError) as raised:
        _load({"MODELSHIP_REGISTRY": "127.0.0.1:5000",
               "MODELSHIP_REGISTRY_AUTH_FILE": str(auth)})
    assert str(auth) in str(raised.value)
    assert "garbage" not in str(raised.value)


def test_the_password_is_in_no_repr():
    loaded = _load({"MODELSHIP_REGISTRY": "127.0.0.1:5000",
                    "MODELSHIP_REGISTRY_USER": "u",
                    "MODELSHIP_REGISTRY_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in repr(loaded)
    assert "hunter2-secret" not in repr(loaded.credentials)


def test_a_registry_or_repository_with_a_trailing_newline_is_refused():
    with pytest.raises(errors.UsageError) as raised:
        _load({"MODELSHIP_REGISTRY": "127.0.0.1:5000\n",
               "MODELSHIP_REPOSITORY": "modelship/digits\n"})
    assert "registry '127.0.0.1:5000\\n'" in str(raised.value)
    assert "repository 'modelship/digits\\n'" in str(raised.value)
