"""With no registry configured, the commands start a local one, reuse it, and
`local-registry --stop` stops it (a newcomer's whole flow on one machine)."""

import json

import pytest

from tools.release import server
from tools.release.tests import support


@pytest.fixture(name="env")
def fixture_env(tmp_path, monkeypatch):
    """No registry settings (only the repository, which //tools/release without an image
    needs); the cache (and so the embedded registry) under tmp."""
    for name in ("MODELSHIP_REGISTRY", "MODELSHIP_REPOSITORY", "MODELSHIP_REGISTRY_USER",
                 "MODELSHIP_REGISTRY_PASSWORD", "MODELSHIP_REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    yield {"XDG_CACHE_HOME": str(tmp_path), "MODELSHIP_REPOSITORY": "team/model",
           "MODELSHIP_VERIFY": "0"}
    server.stop_embedded(str(tmp_path / "modelship" / "registry"))


def test_commands_start_and_reuse_the_embedded_registry_until_stopped(capsys, env, tmp_path):
    status, out, err = support.run_cli(capsys, env, "history", "--json")
    assert status == 0, err
    assert out == ""
    assert "using the embedded registry at 127.0.0.1:" in err
    state_file = tmp_path / "modelship" / "registry" / "state.json"
    state = json.loads(state_file.read_text())
    assert server.answers(state["address"])

    status, out, err = support.run_cli(capsys, env, "local-registry")
    assert status == 0 and out.strip() == state["address"]
    assert json.loads(state_file.read_text())["pid"] == state["pid"]

    status, out, _ = support.run_cli(capsys, env, "local-registry", "--stop")
    assert status == 0 and out.strip() == f"stopped the embedded registry at {state['address']}"
    support.wait_gone(state["address"])
    assert not state_file.exists()
