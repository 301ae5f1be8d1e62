"""A stand-in for the Kubectl seam that records every call (no cluster here).

Pods can be put in its cluster (`add_pod`), each standing for a real HTTP
server on loopback: `get_raw` of a pod's proxy path (what the API server
would forward to the pod's port) is a real GET to that server.
"""

import re
import urllib.error
import urllib.request

from tools.deploy.errors import DeployError

_PROXY = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/:]+):(\d+)/proxy(/.*)$")
_REQUIREMENT = re.compile(r"\s*([\w./-]+)\s*(?:(=)\s*([^,()]+)|in\s*\(([^)]*)\))\s*(?:,|$)")


def matches(selector, labels):
    """Does a label selector (`k=v`, `k in (a,b)`, comma-separated) select these labels?"""
    found = list(_REQUIREMENT.finditer(selector))
    assert found and sum(len(m.group(0)) for m in found) == len(selector), \
        f"selector {selector!r} is not of the form the tool writes"
    for match in found:
        key, value, among = match.group(1), match.group(3), match.group(4)
        allowed = [value.strip()] if value is not None else \
            [v.strip() for v in among.split(",")]
        if labels.get(key) not in allowed:
            return False
    return True


class RecordingKubectl:
    """Records apply/rollout_status/delete/pods/get_raw as tuples; applies keep the objects."""

    def __init__(self):
        self.calls = []
        self.cluster_pods = []
        self.pod_urls = {}

    def apply(self, objects):
        """Records ("apply", [(kind, name), ...]) and keeps the objects."""
        self.calls.append(("apply", [(o["kind"], o["metadata"]["name"]) for o in objects],
                           objects))

    def rollout_status(self, name, timeout_s):
        """Records ("rollout", name)."""
        del timeout_s
        self.calls.append(("rollout", name))

    def delete(self, kind, name):
        """Records ("delete", kind, name)."""
        self.calls.append(("delete", kind, name))

    def add_pod(self, name, track, url, ready=True, app="iris"):
        """Puts a running pod of `track` in the cluster; `url` stands for its port."""
        self.cluster_pods.append({
            "metadata": {"name": name,
                         "labels": {"app.kubernetes.io/name": app,
                                    "modelship.io/track": track}},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready",
                                       "status": "True" if ready else "False"}]}})
        self.pod_urls[name] = url.rstrip("/")

    def pods(self, selector):
        """Records ("get pods", selector); the cluster's pods it selects."""
        self.calls.append(("get pods", selector))
        return [pod for pod in self.cluster_pods
                if matches(selector, pod["metadata"]["labels"])]

    def get_raw(self, path):
        """Records ("get --raw", path); a pod proxy path is answered by that pod's server."""
        self.calls.append(("get --raw", path))
        match = _PROXY.match(path)
        if not match or match.group(2) not in self.pod_urls:
            raise DeployError(f"kubectl get --raw failed: the server could not find the "
                              f"requested resource ({path})")
        try:
            with urllib.request.urlopen(self.pod_urls[match.group(2)] + match.group(4),
                                        timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, OSError) as err:
            raise DeployError(f"kubectl get --raw failed: error trying to reach service: "
                              f"{err}") from err

    def sequence(self):
        """The calls without the applied objects."""
        return [call[:2] if call[0] == "apply" else call for call in self.calls]

    def applied(self):
        """Every object applied, last version per (kind, name)."""
        objects = {}
        for call in self.calls:
            if call[0] == "apply":
                for obj in call[2]:
                    objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return objects
