"""The local target names its containers and images after the model's repository.

The private dockerd and nginx are replaced by recorders (test_local_runtime
and //tests/deploy run the real ones): what is checked is the names the
target gives, for a repository that is not the example model's.
"""

import types

import pytest

from tools.deploy import images
from tools.deploy import local
from tools.deploy import state as state_lib

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


class RecordingDaemon:
    """Stands for the private dockerd: records `docker` calls, every call succeeds."""

    def __init__(self):
        self.calls = []

    def docker(self, *args, check=True):
        """Records the arguments; answers as a docker whose every command worked."""
        del check
        self.calls.append(args)
        return types.SimpleNamespace(returncode=0, stdout="")

    def runs(self):
        """(container name, image tag) of each `docker run`."""
        found = []
        for call in self.calls:
            if call[0] == "run":
                found.append((call[call.index("--name") + 1], call[-1]))
        return found


@pytest.fixture(name="make_target")
def fixture_make_target(tmp_path, monkeypatch):
    """make_target(name=None) -> a LocalTarget on a recording daemon, routes recorded."""
    monkeypatch.setattr(local, "DRAIN_GRACE_S", 0)
    monkeypatch.setattr(local.runtime, "http", lambda *args, **kwargs: (200, {}))
    ports = iter(range(20000, 20100))
    monkeypatch.setattr(local.runtime, "free_port", lambda: next(ports))

    def make(name=None):
        options = types.SimpleNamespace(port=None, name=name)
        target = local.LocalTarget(state_lib.State(str(tmp_path / "state"), "local"), options)
        # pylint: disable=protected-access
        target.daemon = RecordingDaemon()
        target._daemon_up = True
        target.routes = []
        target._route = lambda *args: target.routes.append(args)
        return target
    return make


def test_containers_and_image_tags_are_named_after_the_repository(make_target):
    target = make_target()
    target.deploy(images.parse(f"registry.example/team/iris@{A}"))
    target.canary(images.parse(f"registry.example/team/iris@{B}"), 10)
    (stable, stable_tag), (canary, canary_tag) = target.daemon.runs()
    assert stable == "iris-stable-aaaaaaaaaaaa-20000"
    assert canary == "iris-canary-bbbbbbbbbbbb-20001"
    assert stable_tag == f"modelship-deploy/iris:{A.replace(':', '-')}"
    assert canary_tag == f"modelship-deploy/iris:{B.replace(':', '-')}"


def test_promote_renames_the_canary_container_to_the_stable_track(make_target):
    target = make_target()
    target.deploy(images.parse(f"registry.example/team/iris@{A}"))
    target.canary(images.parse(f"registry.example/team/iris@{B}"), 10)
    target.promote()
    assert ("rename", "iris-canary-bbbbbbbbbbbb-20001", "iris-stable-bbbbbbbbbbbb-20001") \
        in target.daemon.calls
    assert target.state.stable["container"] == "iris-stable-bbbbbbbbbbbb-20001"


def test_name_option_names_the_containers(make_target):
    target = make_target(name="fraud")
    target.deploy(images.parse(f"registry.example/team/iris@{A}"))
    assert target.daemon.runs()[0][0].startswith("fraud-stable-")
    assert target.details()["name"] == "fraud"
