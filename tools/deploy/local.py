"""The local target: real containers in a private dockerd behind a private nginx.

The dockerd and nginx outlive each command (a canary is set by one command
and promoted by another), so both run detached; their roots and ports are in
the state file. Containers use the host network, each on a free port, and
listen on 127.0.0.1 only. A track is replaced make-before-break: the new
container is ready before nginx sends it traffic, and the old one gets
SIGTERM (the service drains in-flight requests) only after the reload.
"""

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

from tools.containers import runtime
from tools.deploy import nginx
from tools.deploy import ownership
from tools.deploy import tracks
from tools.deploy.errors import DeployError, InputError
from tools.image import labels

# Images are tagged LOCAL_REPOSITORY/<name>:<digest> in the private dockerd.
LOCAL_REPOSITORY = "modelship-deploy"
READY_DEADLINE_S = 90
# Old workers of a reloaded nginx may still hold requests for the old track.
DRAIN_GRACE_S = 0.5


def archive_digest(path):
    """The manifest digest of an OCI archive (its index.json's single manifest)."""
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("index.json")
            index = json.load(member)
    except (OSError, KeyError, tarfile.TarError, ValueError) as err:
        raise InputError(f"--archive {path}: not an OCI archive ({err}); give the "
                         ".oci.tar `bazel run //:image` writes") from err
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        raise InputError(f"--archive {path}: holds {len(manifests)} manifests, expected one")
    return manifests[0]["digest"]


def _alive(pid):
    """True while `pid` runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _mounts_under(root):
    prefix = os.path.abspath(root) + "/"
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if (p + "/").startswith(prefix)]


class Daemon(runtime.Docker):
    """A private dockerd that outlives the command that started it."""

    def running(self):
        """True if the daemon answers."""
        return os.path.exists(self.socket) and self.docker("info", check=False).returncode == 0

    def argv(self):
        """The daemon's command line (also how its pid file is recognised as ours)."""
        return ["/usr/sbin/dockerd", "--host", f"unix://{self.socket}",
                "--data-root", os.path.join(self.root, "data"),
                "--exec-root", os.path.join(self.root, "exec"),
                "--pidfile", self.pid_file,
                "--bridge", "none", "--iptables=false", "--ip-masq=false"]

    @property
    def pid_file(self):
        """dockerd's own pid file, inside the private root."""
        return os.path.join(self.root, "docker.pid")

    def start_detached(self, deadline_s=120):
        """Starts dockerd in its own session (setsid --fork), then waits for it.

        The root must already be a private folder of ours (LocalTarget sees to it).
        """
        argv = self.argv()
        if not os.path.exists(argv[0]):
            raise DeployError("dockerd is not installed: run tools/bootstrap")
        ownership.check_private_dir(self.root)
        with open(self.log, "ab") as log:
            # Its container mounts in a namespace of its own (runtime.private_mounts).
            subprocess.run(["setsid", "--fork"] + runtime.private_mounts(argv),
                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           env=self.env, check=True)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.running():
                return
            time.sleep(0.2)
        try:
            with open(self.log, encoding="utf-8", errors="replace") as log:
                tail = "\n".join(log.read().strip().splitlines()[-8:])
        except OSError:
            tail = "(no log)"
        raise DeployError(f"the private dockerd did not start within {deadline_s} s "
                          f"(log {self.log}):\n{tail}")

    def stop_detached(self):
        """Removes every container, stops the daemon, unmounts and removes its root."""
        if self.running():
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        # Only the dockerd this root's command line names: a pid file can lie.
        pid = ownership.read_pid(self.pid_file, self.argv())
        if pid is not None:
            try:
                os.kill(pid, 15)
            except OSError:
                pass
            end = time.monotonic() + 30
            while time.monotonic() < end and _alive(pid):
                time.sleep(0.1)
        # dockerd leaves its network namespace bind mount (exec/netns) and
        # overlay mounts (data) behind when it stops: unmount before removing.
        for lazy in ([], ["--lazy"]):  # a mount still busy goes on the second pass
            for mount in sorted(_mounts_under(self.root), reverse=True):
                subprocess.run(["umount"] + lazy + [mount], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(self.root, ignore_errors=True)
            if not os.path.exists(self.root):
                return


class LocalTarget(tracks.Target):
    """Stable and canary containers behind nginx on 127.0.0.1:--port."""

    name = "local"

    def __init__(self, state, options):
        super().__init__(state, options)
        details = state.details
        if "port" not in details:
            details["port"] = getattr(options, "port", None) or 8080
        details.setdefault("containers", {})
        root = details.get("dockerd_root")
        self.daemon = Daemon(root) if root else None
        self._daemon_up = False
        self.proxy = nginx.Nginx(os.path.join(state.directory, "nginx"))

    # --- runtime ------------------------------------------------------------------

    def runtime_root(self):
        """The private dockerd's root: a folder of ours alone, made on first use."""
        root = self.state.details.get("dockerd_root")
        if root and os.path.lexists(root):
            # Checked before anything in it is trusted (its socket included).
            return ownership.check_private_dir(root)
        # First use, or /tmp was cleared: a new folder whose name nobody can
        # guess and create first. Recorded at once, so a command that fails
        # later still leaves the daemon findable by `down`.
        root = ownership.new_private_dir("modelship-deploy-")
        self.state.details["dockerd_root"] = root
        self.state.save()
        return root

    def _docker(self):
        if not self._daemon_up:
            root = self.runtime_root()
            if self.daemon is None or self.daemon.root != root:
                self.daemon = Daemon(root)
            if not self.daemon.running():
                self.daemon.start_detached()
            self._daemon_up = True
        return self.daemon

    def _local_tag(self, image):
        return f"{LOCAL_REPOSITORY}/{self.app_name(image)}:{image.digest.replace(':', '-')}"

    def _ensure_image(self, image, archive):
        daemon = self._docker()
        tag = self._local_tag(image)
        if daemon.docker("image", "inspect", tag, check=False).returncode == 0:
            return tag
        if archive:
            found = archive_digest(archive)
            if found != image.digest:
                raise InputError(f"--archive {archive} holds {found}, not the --image digest "
                                 f"{image.digest}")
            with tempfile.TemporaryDirectory(prefix="modelship-load-") as scratch:
                daemon.load_oci_archive(archive, tag, scratch)
            return tag
        pulled = daemon.docker("pull", "--quiet", image.reference, check=False)
        if pulled.returncode != 0:
            raise DeployError(f"cannot pull {image.reference}: {pulled.stdout.strip()} "
                              "(or give --archive FILE)")
        daemon.docker("tag", image.reference, tag)
        return tag

    def _run(self, image, track, archive):
        tag = self._ensure_image(image, archive)
        daemon = self._docker()
        port = runtime.free_port()
        name = f"{self.app_name(image)}-{track}-{image.short}-{port}"
        daemon.docker("run", "--detach", "--network", "host", "--read-only",
                      "--env", "MODELSHIP_HOST=127.0.0.1", "--env", f"MODELSHIP_PORT={port}",
                      "--label", f"{labels.DEPLOY_DIGEST}={image.digest}",
                      "--name", name, tag)
        end = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < end:
            try:
                if runtime.http(port, "GET", "/v2/health/ready", timeout=2)[0] == 200:
                    return {"image": image.reference, "digest": image.digest,
                            "container": name, "port": port}
            except OSError:
                pass
            if daemon.docker("inspect", "--format", "{{.State.Running}}", name,
                             check=False).stdout.strip() == "false":
                break
            time.sleep(0.2)
        logs = daemon.docker("logs", "--tail", "20", name, check=False).stdout.strip()
        daemon.docker("rm", "-f", name, check=False)
        raise DeployError(f"{image.reference} did not become ready on port {port}:\n{logs}")

    def _stop(self, track):
        if track and track.get("container"):
            time.sleep(DRAIN_GRACE_S)
            self._docker().docker("stop", "--time", "15", track["container"], check=False)
            self._docker().docker("rm", "-f", track["container"], check=False)

    def _route(self, stable, canary=None, weight=0):
        self.proxy.apply(nginx.render(self.proxy.directory, self.state.details["port"],
                                      stable["port"], canary and canary["port"], weight))

    # --- tracks.Target -------------------------------------------------------------

    def _start_stable(self, image, archive):
        track = self._run(image, "stable", archive)
        try:
            self._route(track)
        except DeployError:
            self._stop(track)
            raise
        self._stop(self.state.canary)
        if self.state.stable and self.state.stable.get("container") != track["container"]:
            self._stop(self.state.stable)
        return track

    def _start_canary(self, image, weight, archive):
        track = dict(self._run(image, "canary", archive), weight=weight)
        try:
            self._route(self.state.stable, track, weight)
        except DeployError:
            self._stop(track)
            raise
        self._stop(self.state.canary)
        return track

    def _set_weight(self, weight):
        self._route(self.state.stable, self.state.canary, weight)

    def _promote(self):
        canary = dict(self.state.canary)
        canary.pop("weight", None)
        self._route(canary)
        self._stop(self.state.stable)
        # The same container goes on serving; only its name says its new track.
        app = self.app_name()
        name = canary["container"].replace(f"{app}-canary-", f"{app}-stable-", 1)
        if self._docker().docker("rename", canary["container"], name,
                                 check=False).returncode == 0:
            canary["container"] = name
        return canary

    def _drop_canary(self):
        self._route(self.state.stable)
        traffic_back = time.time()
        self._stop(self.state.canary)
        return traffic_back

    def metrics_urls(self):
        urls = {}
        for name in ("stable", "canary"):
            track = self.state.data[name]
            if track:
                urls[name] = [f"http://127.0.0.1:{track['port']}/metrics"]
        return urls

    def details(self):
        ports = {name: self.state.data[name]["port"] for name in ("stable", "canary")
                 if self.state.data[name]}
        return {"listen": f"127.0.0.1:{self.state.details['port']}", "ports": ports,
                "name": self.state.details.get("name"),
                "nginx_conf": self.proxy.conf,
                "dockerd_root": self.state.details.get("dockerd_root")}

    def down(self):
        self.proxy.stop()
        root = self.state.details.get("dockerd_root")
        if root and os.path.lexists(root):
            ownership.check_private_dir(root)
            Daemon(root).stop_detached()
        self.state.set_canary(None)
        self.state.data["stable"] = None
        self.state.event("down")
        self.state.save()
