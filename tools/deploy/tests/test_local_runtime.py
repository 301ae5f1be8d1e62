"""The local target trusts only a private folder of its own and processes it started.

Its dockerd's root lives in /tmp, where anyone can create a folder first,
and the tool signals the pids of dockerd's and nginx's pid files. Here
another user's folder (real ownership: these tests run as root, outside the
sandbox, whose user namespace maps no other uid), a writable one, a link, and
pid files naming a process that is not the daemon (a victim `sleep`) are put
in its way; a real dockerd and a real nginx show that the tool still finds
and stops its own.
"""

import hashlib
import json
import os
import subprocess
import time
import types

import pytest

from tools.containers import runtime
from tools.deploy import local
from tools.deploy import main
from tools.deploy import nginx
from tools.deploy import ownership
from tools.deploy import state as state_lib

OTHER_UID = 4242


@pytest.fixture(name="victim")
def fixture_victim():
    """A process of ours that is not dockerd or nginx: must never get a signal."""
    with subprocess.Popen(["sleep", "120"]) as proc:
        yield proc
        proc.kill()


@pytest.fixture(name="planted")
def fixture_planted():
    """Folders a test plants in /tmp, removed afterwards."""
    folders = []
    yield folders
    for folder in folders:
        subprocess.run(["rm", "-rf", folder], check=False)


def run(state_dir, *argv):
    """The exit status of the deploy CLI on the local target."""
    return main.main(["--target", "local", "--state-dir", str(state_dir)] + list(argv))


def target(state_dir):
    """A LocalTarget for the state dir, as the CLI builds it."""
    options = types.SimpleNamespace(port=None)
    return local.LocalTarget(state_lib.State(str(state_dir), "local"), options)


def record_root(state_dir, root):
    """A state file that names `root` as the dockerd root (as an earlier run wrote it)."""
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "state.json"), "w", encoding="utf-8") as out:
        json.dump({"target": "local", "details": {"port": 8080, "dockerd_root": root}}, out)


def plant(planted, path, pid, mode=0o755, uid=None):
    """A folder at `path` holding docker.pid = pid."""
    os.mkdir(path)
    planted.append(path)
    with open(os.path.join(path, "docker.pid"), "w", encoding="utf-8") as out:
        out.write(f"{pid}\n")
    if uid is not None:
        os.chown(path, uid, uid)
    os.chmod(path, mode)


def test_dockerd_root_is_a_new_private_folder_with_an_unguessable_name(tmp_path, planted):
    roots = []
    for name in ("one", "two"):
        root = target(tmp_path / name).runtime_root()
        planted.append(root)
        roots.append(root)
        info = os.lstat(root)
        assert info.st_mode & 0o777 == 0o700
        assert info.st_uid == os.geteuid()
        assert os.path.dirname(root) == "/tmp"
        # Nothing about the state dir (which others may know) is in the name.
        digest = hashlib.sha256(str(tmp_path / name).encode()).hexdigest()
        assert digest[:12] not in root
    assert roots[0] != roots[1]
    # The next command of the same state dir finds the recorded folder again.
    assert target(tmp_path / "one").runtime_root() == roots[0]


def test_a_vanished_root_is_replaced_by_a_new_name_not_recreated(tmp_path, planted):
    first = target(tmp_path).runtime_root()
    os.rmdir(first)
    second = target(tmp_path).runtime_root()
    planted.append(second)
    assert second != first


def test_a_folder_planted_at_the_old_predictable_name_is_left_alone(tmp_path, planted, victim):
    state_dir = tmp_path / "state"
    digest = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:12]
    plant(planted, f"/tmp/modelship-deploy-{digest}", victim.pid)
    assert run(state_dir, "down") == 0
    time.sleep(0.3)
    assert victim.poll() is None, "the planted pid file's process was signalled"
    root = target(state_dir).runtime_root()
    planted.append(root)
    assert root != f"/tmp/modelship-deploy-{digest}"


@pytest.mark.parametrize("how", ["another_owner", "world_writable", "symlink"])
def test_a_recorded_root_that_is_not_ours_alone_is_refused(tmp_path, planted, victim, capsys,
                                                           how):
    path = f"/tmp/modelship-deploy-test-{os.getpid()}-{how}"
    if how == "another_owner":
        plant(planted, path, victim.pid, uid=OTHER_UID)
        expected = f"owned by uid {OTHER_UID}"
    elif how == "world_writable":
        plant(planted, path, victim.pid, mode=0o777)
        expected = "writable by other users (mode 0777)"
    else:
        plant(planted, path + "-target", victim.pid, mode=0o700)
        os.symlink(path + "-target", path)
        planted.append(path)
        expected = "is not a folder"
    record_root(tmp_path, path)
    assert run(tmp_path, "down") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"deploy: {path} ") and expected in err, err
    assert "Traceback" not in err
    time.sleep(0.3)
    assert victim.poll() is None
    assert os.path.lexists(path), "down removed a folder it does not own"


def test_a_forged_dockerd_pid_file_in_our_own_folder_gets_no_signal(tmp_path, planted, victim):
    root = target(tmp_path).runtime_root()
    planted.append(root)
    with open(os.path.join(root, "docker.pid"), "w", encoding="utf-8") as out:
        out.write(f"{victim.pid}\n")
    assert run(tmp_path, "down") == 0
    time.sleep(0.3)
    assert victim.poll() is None


def test_a_forged_nginx_pid_file_gets_no_signal(tmp_path, victim):
    folder = tmp_path / "nginx"
    folder.mkdir()
    (folder / "nginx.pid").write_text(f"{victim.pid}\n", encoding="utf-8")
    assert run(tmp_path, "down") == 0
    time.sleep(0.3)
    assert victim.poll() is None


def test_our_own_nginx_is_found_and_stopped(tmp_path):
    proxy = nginx.Nginx(str(tmp_path / "nginx"))
    proxy.apply(nginx.render(proxy.directory, runtime.free_port(), runtime.free_port()))
    pid = proxy.pid()
    assert pid is not None
    proxy.stop()
    assert proxy.pid() is None
    assert ownership.process_argv(pid) is None


def test_our_own_dockerd_is_found_and_stopped(tmp_path):
    root = target(tmp_path).runtime_root()
    daemon = local.Daemon(root)
    try:
        daemon.start_detached()
        with open(daemon.pid_file, encoding="utf-8") as text:
            pid = int(text.read())
        assert ownership.read_pid(daemon.pid_file, daemon.argv()) == pid
        # Its mounts (dockerd makes some as it starts) are in a namespace of its own:
        # none shows in ours, where Bazel's sandbox copies the mount table of every
        # action it starts (tools/containers/runtime.private_mounts).
        assert local._mounts_under(root) == []  # pylint: disable=protected-access
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    finally:
        daemon.stop_detached()
    assert ownership.process_argv(pid) is None
    assert not os.path.exists(root)
