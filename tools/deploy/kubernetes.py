"""The kubernetes target: rendered manifests applied with kubectl.

Each track is a Deployment and a Service (`NAME-stable`, `NAME-canary`);
traffic enters through an ingress-nginx Ingress for the stable Service and,
while a canary runs, a second Ingress for the same host marked
`nginx.ingress.kubernetes.io/canary: "true"` with `canary-weight` set: the
controller sends that share of requests to the canary Service. Images are
pinned by digest. Every call to the cluster goes through `Kubectl`, the one
seam the tests replace with a recorder.
"""

import json
import os
import subprocess
import time

from tools.deploy import images
from tools.deploy import tracks
from tools.deploy.errors import DeployError

PORT = 8080
UID = 65532
CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


class Kubectl:
    """The cluster, as three kubectl calls. Tests substitute a recorder."""

    def __init__(self, binary="kubectl", context=None, namespace="modelship"):
        self.binary = binary
        self.context = context
        self.namespace = namespace

    def _run(self, args, stdin=None):
        argv = [self.binary] + (["--context", self.context] if self.context else []) + \
            ["--namespace", self.namespace] + args
        try:
            proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, check=False)
        except FileNotFoundError as err:
            raise DeployError(f"{self.binary} not found: install kubectl or pass "
                              "--kubectl PATH") from err
        if proc.returncode != 0:
            raise DeployError(f"kubectl {' '.join(args[:3])} failed: {proc.stdout.strip()}")
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


def _labels(name, track):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "modelship",
            "app.kubernetes.io/managed-by": "modelship-deploy", "modelship.io/track": track}


def deployment(name, namespace, track, image, replicas):
    """The Deployment of one track: `image` pinned by digest, probes, limits, non-root."""
    labels = _labels(name, track)
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2}
    container = {
        "name": "digits",
        "image": image.reference,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": "DIGITS_HOST", "value": "0.0.0.0"},
                {"name": "DIGITS_PORT", "value": str(PORT)}],
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
                         # SIGTERM drains for DIGITS_SHUTDOWN_TIMEOUT_S (30 s).
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
    """The Ingress of a track; the canary one carries the canary annotations."""
    annotations = {}
    if track == "canary":
        annotations = {CANARY: "true", CANARY_WEIGHT: str(weight)}
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": f"{name}-{track}", "namespace": namespace,
                     "labels": _labels(name, track), "annotations": annotations},
        "spec": {"ingressClassName": "nginx",
                 "rules": [{"host": host, "http": {"paths": [{
                     "path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": f"{name}-{track}",
                                             "port": {"number": PORT}}}}]}}]},
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
        for key in ("namespace", "name", "host", "replicas"):
            value = getattr(options, key, None)
            if value is not None:
                state.details[key] = value
        defaults = {"namespace": "modelship", "name": "digits", "host": "digits.local",
                    "replicas": 2}
        for key, value in defaults.items():
            state.details.setdefault(key, value)
        self.app = state.details["name"]
        self.namespace = state.details["namespace"]
        self.host = state.details["host"]
        self.replicas = state.details["replicas"]
        self.kubectl = kubectl or Kubectl(getattr(options, "kubectl", None) or "kubectl",
                                          getattr(options, "context", None), self.namespace)

    def _objects(self, track, image, weight=None):
        return track_objects(self.app, self.namespace, self.host, self.replicas, track, image,
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
        urls = {}
        for track in ("stable", "canary"):
            flag = getattr(self.options, f"{track}_metrics", None)
            urls[track] = flag or \
                f"http://{self.app}-{track}.{self.namespace}.svc:{PORT}/metrics"
        return urls

    def details(self):
        return {"namespace": self.namespace, "name": self.app, "host": self.host,
                "replicas": self.replicas}
