"""Folders and processes the local target may trust: its own, and only its own.

The private dockerd's root sits in /tmp (a unix socket path must stay under
108 bytes), where any user can create a folder first. So the folder gets a
random name made with mkdtemp (0700), and every later use checks that it is
still a real folder of ours that nobody else can write to. A pid file is a
claim, not a fact: before the tool signals the pid it holds, the process
must be ours, running exactly the command line the tool started.
"""

import os
import stat
import tempfile

from tools.deploy.errors import DeployError

# Short on purpose: the dockerd socket and containerd's sockets live below it.
RUNTIME_BASE = "/tmp"


def new_private_dir(prefix, base=RUNTIME_BASE):
    """A fresh folder with an unpredictable name, mode 0700, owned by us."""
    try:
        return tempfile.mkdtemp(prefix=prefix, dir=base)
    except OSError as err:
        raise DeployError(f"cannot create a private folder in {base}: {err.strerror}") from err


def check_private_dir(path):
    """Refuses `path` unless it is a folder (not a link) of ours, writable by us only."""
    try:
        info = os.lstat(path)
    except OSError as err:
        raise DeployError(f"cannot inspect {path}: {err.strerror}") from err
    if not stat.S_ISDIR(info.st_mode):
        raise DeployError(f"{path} is not a folder (a symbolic link or a file is in its "
                          "place): refusing to use it; remove it and run the command again")
    if info.st_uid != os.geteuid():
        raise DeployError(f"{path} is owned by uid {info.st_uid}, not by this user (uid "
                          f"{os.geteuid()}): someone else created it, refusing to use it; "
                          "remove it and run the command again")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise DeployError(f"{path} is writable by other users (mode "
                          f"{stat.S_IMODE(info.st_mode):04o}): refusing to use it; "
                          f"`chmod 700 {path}` or remove it")
    return path


def process_argv(pid):
    """The command line of `pid` as a list, or None when it is gone or not ours."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.geteuid():
            return None
        with open(f"/proc/{pid}/cmdline", "rb") as text:
            raw = text.read()
        with open(f"/proc/{pid}/stat", encoding="utf-8") as text:
            if text.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None  # a zombie: it runs nothing any more
    except (OSError, IndexError):
        return None
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def read_pid(pid_file, expected_argv):
    """The pid in `pid_file` if that process is ours and runs `expected_argv`, else None.

    `expected_argv` is the exact command line the tool started (a list);
    anything else under that pid (a recycled pid, a forged file) is left
    alone.
    """
    try:
        with open(pid_file, encoding="utf-8") as text:
            pid = int(text.read().strip())
    except (OSError, ValueError):
        return None
    if pid <= 1:
        return None
    argv = process_argv(pid)
    return pid if argv is not None and argv == list(expected_argv) else None
