"""The kubernetes target: rendered manifests applied with kubectl.

Each track is a Deployment and a Service (`NAME-stable`, `NAME-canary`);
traffic enters through an ingress-nginx Ingress for the stable Service and,
while a canary runs, a second Ingress for the same host marked
`nginx.ingress.kubernetes.io/canary: "true"` with `canary-weight` set: the
controller sends that share of requests to the canary Service. Images are
pinned by digest. Every call to the cluster goes through `Kubectl`, the one
seam the tests replace with a recorder.
"""

import concurrent.futures
import json
import os
import subprocess
import time

from tools.deploy import gate
from tools.deploy import images
from tools.deploy import public
from tools.deploy import tracks
from tools.deploy.errors import DeployError

PORT = 8080
SCRAPE_TIMEOUT_S = 5
UID = 65532
CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


class Kubectl:
    """The cluster, as five kubectl calls. Tests substitute a recorder."""

    def __init__(self, binary="kubectl", context=None, namespace="modelship"):
        self.binary = binary
        self.context = context
        self.namespace = namespace

    def _run(self, args, stdin=None, timeout_s=None):
        argv = [self.binary] + (["--context", self.context] if self.context else []) + \
            ["--namespace", self.namespace] + args
        try:
            proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, check=False,
                                  timeout=timeout_s)
        except FileNotFoundError as err:
            raise DeployError(f"{self.binary} not found: install kubectl or pass "
                              "--kubectl PATH") from err
        except subprocess.TimeoutExpired as err:
            raise DeployError(f"kubectl {' '.join(args[:3])} did not answer within "
                              f"{timeout_s} s") from err
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip())
            raise DeployError(f"kubectl {' '.join(args[:3])} failed: {said}")
        return proc.stdout

    def apply(self, objects):
        """kubectl apply -f - with the objects as one List."""
        return self._run(["apply", "-f", "-"],
                         json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def rollout_status(self, name, timeout_s):
        """Waits until the Deployment's new pods are ready (or fails after timeout_s)."""
        return self._run(["rollout", "status", f"deployment/{name}",
                          f"--timeout={timeout_s}s"])

    def delete(self, kind, name):
        """Deletes one object; absent is fine."""
        return self._run(["delete", kind, name, "--ignore-not-found"])

    def pods(self, selector):
        """The pods matching a label selector, as the API lists them (JSON objects)."""
        listed = self._run(["get", "pods", "--selector", selector, "--output", "json"],
                           timeout_s=SCRAPE_TIMEOUT_S * 2)
        try:
            return json.loads(listed).get("items", [])
        except (ValueError, AttributeError) as err:
            raise DeployError(f"kubectl get pods gave no pod list: {err}") from err

    def get_raw(self, path):
        """GET `path` on the API server (`kubectl get --raw`), e.g. a pod's proxy."""
        return self._run(["get", "--raw", path, f"--request-timeout={SCRAPE_TIMEOUT_S}s"],
                         timeout_s=SCRAPE_TIMEOUT_S * 2)


def _labels(name, track):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "modelship",
            "app.kubernetes.io/managed-by": "modelship-deploy", "modelship.io/track": track}


def deployment(name, namespace, track, image, replicas):
    """The Deployment of one track: `image` pinned by digest, probes, limits, non-root."""
    labels = _labels(name, track)
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2}
    container = {
        "name": name,
        "image": image.reference,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": "MODELSHIP_HOST", "value": "0.0.0.0"},
                {"name": "MODELSHIP_PORT", "value": str(PORT)}],
        "readinessProbe": dict(probe, httpGet={"path": "/v2/health/ready", "port": "http"},
                               failureThreshold=2),
        "livenessProbe": dict(probe, httpGet={"path": "/v2/health/live", "port": "http"},
                              initialDelaySeconds=10, failureThreshold=3),
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"},
                      "limits": {"cpu": "1", "memory": "256Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{name}-{track}", "namespace": namespace, "labels": labels,
                     "annotations": {"modelship.io/digest": image.digest}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name,
                                         "modelship.io/track": track}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"modelship.io/digest": image.digest,
                                             "prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(PORT),
                                             "prometheus.io/path": "/metrics"}},
                "spec": {"containers": [container],
                         "securityContext": {"runAsNonRoot": True, "runAsUser": UID,
                                             "runAsGroup": UID, "fsGroup": UID,
                                             "seccompProfile": {"type": "RuntimeDefault"}},
                         "automountServiceAccountToken": False,
                         # SIGTERM drains for MODELSHIP_SHUTDOWN_TIMEOUT_S (30 s).
                         "terminationGracePeriodSeconds": 40},
            },
        },
    }


def service(name, namespace, track):
    """The Service in front of one track's pods."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"{name}-{track}", "namespace": namespace,
                     "labels": _labels(name, track)},
        "spec": {"selector": {"app.kubernetes.io/name": name, "modelship.io/track": track},
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]},
    }


def ingress(name, namespace, host, track, weight=None):
    """The Ingress of a track; the canary one carries the canary annotations.

    Only the public API's paths (public.PATHS) are routed: /metrics stays
    inside the cluster, for Prometheus and the gate, which read each pod.
    Both Ingresses list the same host and paths, as ingress-nginx's canary
    needs.
    """
    annotations = {}
    if track == "canary":
        annotations = {CANARY: "true", CANARY_WEIGHT: str(weight)}
    backend = {"service": {"name": f"{name}-{track}", "port": {"number": PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": f"{name}-{track}", "namespace": namespace,
                     "labels": _labels(name, track), "annotations": annotations},
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": host, "http": {"paths": [
                     {"path": path, "pathType": kind, "backend": backend}
                     for kind, path in public.PATHS]}}]},
    }


def track_objects(app, namespace, host, replicas, track, image, weight=None):
    """Deployment, Service and Ingress of one track."""
    return [deployment(app, namespace, track, image, replicas),
            service(app, namespace, track),
            ingress(app, namespace, host, track, weight)]


class KubernetesTarget(tracks.Target):
    """Stable and canary tracks in a cluster, through the Kubectl seam."""

    name = "kubernetes"
    rollout_timeout_s = 300

    def __init__(self, state, options, kubectl=None):
        super().__init__(state, options)
        for key in ("namespace", "host", "replicas"):
            value = getattr(options, key, None)
            if value is not None:
                state.details[key] = value
        # The name (and the host, NAME.local unless --host) comes from the
        # first image when --name is not given: tracks.Target.app_name.
        for key, value in {"namespace": "modelship", "replicas": 2}.items():
            state.details.setdefault(key, value)
        self.namespace = state.details["namespace"]
        self.replicas = state.details["replicas"]
        self.kubectl = kubectl or Kubectl(getattr(options, "kubectl", None) or "kubectl",
                                          getattr(options, "context", None), self.namespace)

    @property
    def app(self):
        """NAME of the objects (`NAME-stable`, `NAME-canary`), once known."""
        return self.app_name()

    def host(self, name):
        """The Ingress host: --host, or NAME.local."""
        return self.state.details.get("host") or f"{name}.local"

    def _objects(self, track, image, weight=None):
        name = self.app_name(image)
        return track_objects(name, self.namespace, self.host(name), self.replicas, track, image,
                             weight)

    def _write(self, label, objects):
        folders = [os.path.join(self.state.directory, "manifests")]
        if getattr(self.options, "manifests", None):
            folders.append(self.options.manifests)
        for folder in folders:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{label}.json"), "w", encoding="utf-8") as out:
                json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, out,
                          indent=1, sort_keys=True)
                out.write("\n")

    def _apply(self, label, objects, rollout=None):
        self._write(label, objects)
        self.kubectl.apply(objects)
        if rollout:
            self.kubectl.rollout_status(rollout, self.rollout_timeout_s)

    def _delete_canary(self):
        # The Ingress first: traffic leaves the canary before its pods go.
        self.kubectl.delete("ingress", f"{self.app}-canary")
        traffic_back = time.time()
        for kind in ("service", "deployment"):
            self.kubectl.delete(kind, f"{self.app}-canary")
        path = os.path.join(self.state.directory, "manifests", "canary.json")
        if os.path.exists(path):
            os.remove(path)
        return traffic_back

    @staticmethod
    def _track(image, **extra):
        return dict({"image": image.reference, "digest": image.digest}, **extra)

    def _start_stable(self, image, archive):
        del archive
        self._apply("stable", self._objects("stable", image), rollout=f"{self.app}-stable")
        if self.state.canary:
            self._delete_canary()
        return self._track(image)

    def _start_canary(self, image, weight, archive):
        del archive
        objects = self._objects("canary", image, weight)
        # Pods first at weight 0 (the Ingress follows once they are ready), so
        # the controller never routes to a canary that cannot answer.
        self._apply("canary", objects[:2], rollout=f"{self.app}-canary")
        self._apply("canary", objects)
        return self._track(image, weight=weight)

    def _set_weight(self, weight):
        canary = self.state.canary
        self._apply("canary", self._objects("canary", images.parse(canary["image"]), weight))

    def _promote(self):
        image = images.parse(self.state.canary["image"])
        # Stable rolls to the canary's digest while the canary still serves its
        # share; only once stable is ready does the canary leave.
        self._apply("stable", self._objects("stable", image), rollout=f"{self.app}-stable")
        self._delete_canary()
        return self._track(image)

    def _drop_canary(self):
        return self._delete_canary()

    def metrics_urls(self):
        """The --stable-metrics / --canary-metrics URLs given (comma-separated lists)."""
        urls = {}
        for track in tracks.TRACKS:
            flag = getattr(self.options, f"{track}_metrics", None)
            if flag:
                urls[track] = [url.strip() for url in flag.split(",") if url.strip()]
        return urls

    def read_metrics(self):
        """Every pod of each track, read one by one through the API server's pod proxy.

        A Service answers each request from one pod of its choice, so two
        readings through it may come from different pods: the gate reads
        every pod of the track itself (`--stable-metrics` / `--canary-metrics`
        replace that with given URLs).
        """
        given = self.metrics_urls()
        readings = {track: {url: gate.scrape(url) for url in urls}
                    for track, urls in given.items()}
        wanted = [track for track in tracks.TRACKS if track not in given]
        if not wanted:
            return readings
        selector = f"app.kubernetes.io/name={self.app},modelship.io/track in " \
            f"({','.join(wanted)})"
        pods = {track: [] for track in wanted}
        for pod in self.kubectl.pods(selector):
            track = (pod.get("metadata", {}).get("labels") or {}).get("modelship.io/track")
            if track in pods and (pod.get("status") or {}).get("phase") == "Running":
                pods[track].append(pod)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            for track in wanted:
                read = list(pool.map(self._read_pod, pods[track]))
                readings[track] = {name: snapshot for name, snapshot in read
                                   if snapshot is not None}
                if not readings[track]:
                    raise DeployError(f"no running pod of {self.app}-{track} answered "
                                      f"/metrics (found {len(pods[track])} running)")
        return readings

    def _read_pod(self, pod):
        """(pod name, Snapshot); None for a pod not ready or going away that cannot answer."""
        name = pod["metadata"]["name"]
        path = f"/api/v1/namespaces/{self.namespace}/pods/{name}:{PORT}/proxy/metrics"
        try:
            return name, gate.parse(self.kubectl.get_raw(path))
        except DeployError as err:
            conditions = (pod.get("status") or {}).get("conditions") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in conditions)
            if ready and not pod["metadata"].get("deletionTimestamp"):
                raise DeployError(f"cannot read the metrics of pod {name}: {err}") from err
            return name, None

    def details(self):
        name = self.state.details.get("name")
        return {"namespace": self.namespace, "name": name,
                "host": self.host(name) if name else self.state.details.get("host"),
                "replicas": self.replicas}
