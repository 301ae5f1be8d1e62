"""The kubernetes target: rendered manifests and the kubectl calls, recorded."""

import contextlib
import http.server
import io
import json
import threading
import urllib.parse
import urllib.request

import pytest

from serving.metrics import Metrics
from tools.deploy import main
from tools.deploy.tests import contract
from tools.deploy.tests.recorder import RecordingKubectl

REPO = "registry.example:5000/team/iris"
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


@pytest.fixture(name="cluster")
def fixture_cluster(tmp_path):
    """run(*argv) -> (exit, stdout); the recorder is cluster.kubectl."""
    kubectl = RecordingKubectl()

    def run(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main.main(["--target", "kubernetes", "--state-dir", str(tmp_path),
                                "--namespace", "ml", "--replicas", "3"] + list(argv),
                               kubectl=kubectl)
        return status, out.getvalue()

    run.kubectl = kubectl
    run.state_dir = tmp_path
    return run


def deployment_container(obj):
    """The one container of a Deployment's pod template."""
    return obj["spec"]["template"]["spec"]["containers"][0]


def test_deploy_applies_the_stable_track_and_waits_for_rollout(cluster):
    assert cluster("deploy", "--image", f"{REPO}@{A}")[0] == 0
    assert cluster.kubectl.sequence() == [
        ("apply", [("Deployment", "iris-stable"), ("Service", "iris-stable"),
                   ("Ingress", "iris-stable")]),
        ("rollout", "iris-stable")]


def test_stable_deployment_pins_the_digest_probes_resources_and_nonroot(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    objects = cluster.kubectl.applied()
    dep = objects[("Deployment", "iris-stable")]
    assert dep["metadata"]["namespace"] == "ml"
    assert dep["spec"]["replicas"] == 3
    container = deployment_container(dep)
    assert container["image"] == f"{REPO}@{A}"
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready",
                                                      "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["resources"]["limits"]["memory"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    pod = dep["spec"]["template"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    # The selector picks this track's pods only, and the pods carry its labels.
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector["modelship.io/track"] == "stable"
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())


def test_services_select_their_own_track(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "10")
    objects = cluster.kubectl.applied()
    for track in ("stable", "canary"):
        svc = objects[("Service", f"iris-{track}")]
        assert svc["spec"]["selector"]["modelship.io/track"] == track
        assert svc["spec"]["ports"][0]["targetPort"] == "http"


def test_names_come_from_the_image_repository_not_from_a_built_in_model(cluster):
    cluster("deploy", "--image", f"registry.example/vision/resnet_50@{A}")
    objects = cluster.kubectl.applied()
    assert sorted(objects) == [("Deployment", "resnet-50-stable"),
                               ("Ingress", "resnet-50-stable"), ("Service", "resnet-50-stable")]
    dep = objects[("Deployment", "resnet-50-stable")]
    assert deployment_container(dep)["name"] == "resnet-50"
    assert dep["metadata"]["labels"]["app.kubernetes.io/name"] == "resnet-50"
    assert objects[("Ingress", "resnet-50-stable")]["spec"]["rules"][0]["host"] == \
        "resnet-50.local"
    assert objects[("Service", "resnet-50-stable")]["spec"]["selector"] == {
        "app.kubernetes.io/name": "resnet-50", "modelship.io/track": "stable"}


def test_host_option_replaces_the_default_host(cluster):
    cluster("--host", "models.example.com", "deploy", "--image", f"{REPO}@{A}")
    ingress = cluster.kubectl.applied()[("Ingress", "iris-stable")]
    assert ingress["spec"]["rules"][0]["host"] == "models.example.com"


def test_canary_ingress_carries_the_canary_weight_for_the_same_host(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    assert cluster("canary", "--image", f"{REPO}@{B}", "--weight", "25")[0] == 0
    objects = cluster.kubectl.applied()
    stable, canary = objects[("Ingress", "iris-stable")], objects[("Ingress", "iris-canary")]
    assert "nginx.ingress.kubernetes.io/canary" not in stable["metadata"]["annotations"]
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "25"}
    assert canary["spec"]["rules"][0]["host"] == stable["spec"]["rules"][0]["host"]
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "iris-canary"
    assert deployment_container(objects[("Deployment", "iris-canary")])["image"] == \
        f"{REPO}@{B}"


def ingress_backend(ingress, path):
    """The Service an Ingress sends `path` to, by the Ingress API's matching rules."""
    wanted = [part for part in path.split("?")[0].split("/") if part]
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            prefix = [part for part in entry["path"].split("/") if part]
            if entry["pathType"] == "Exact":
                matched = path.split("?")[0] == entry["path"]
            else:
                assert entry["pathType"] == "Prefix", entry
                matched = wanted[:len(prefix)] == prefix
            if matched:
                return entry["backend"]["service"]["name"]
    return None


def test_ingresses_route_every_public_path_and_never_metrics(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "25")
    objects = cluster.kubectl.applied()
    ingresses = {track: objects[("Ingress", f"iris-{track}")] for track in ("stable", "canary")}
    for track, ingress in ingresses.items():
        for path in contract.api_paths():
            assert ingress_backend(ingress, path) == f"iris-{track}", path
        for path in ("/metrics", "/metrics/", "/metrics?x=1", "/", "/v2metrics", "/metricsz"):
            assert ingress_backend(ingress, path) is None, path
    # ingress-nginx pairs a canary Ingress with the main one by host and path.
    assert ingresses["stable"]["spec"]["rules"][0]["http"]["paths"] == [
        dict(entry, backend={"service": {"name": "iris-stable", "port": {"number": 8080}}})
        for entry in ingresses["canary"]["spec"]["rules"][0]["http"]["paths"]]


def test_canary_pods_are_ready_before_its_ingress_exists(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster.kubectl.calls.clear()
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "10")
    assert cluster.kubectl.sequence() == [
        ("apply", [("Deployment", "iris-canary"), ("Service", "iris-canary")]),
        ("rollout", "iris-canary"),
        ("apply", [("Deployment", "iris-canary"), ("Service", "iris-canary"),
                   ("Ingress", "iris-canary")])]


def test_weight_change_reapplies_the_canary_ingress(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "10")
    assert cluster("canary", "--weight", "50")[0] == 0
    ingress = cluster.kubectl.applied()[("Ingress", "iris-canary")]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] \
        == "50"


def test_promote_rolls_stable_to_the_canary_digest_then_removes_the_canary(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "50")
    cluster.kubectl.calls.clear()
    assert cluster("promote")[0] == 0
    assert cluster.kubectl.sequence() == [
        ("apply", [("Deployment", "iris-stable"), ("Service", "iris-stable"),
                   ("Ingress", "iris-stable")]),
        ("rollout", "iris-stable"),
        ("delete", "ingress", "iris-canary"),
        ("delete", "service", "iris-canary"),
        ("delete", "deployment", "iris-canary")]
    stable = cluster.kubectl.applied()[("Deployment", "iris-stable")]
    assert deployment_container(stable)["image"] == f"{REPO}@{B}"


def test_rollback_of_a_canary_removes_its_ingress_first(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "10")
    cluster.kubectl.calls.clear()
    status, out = cluster("rollback")
    assert status == 0
    assert json.loads(out)["rolled_back"] == "canary"
    assert cluster.kubectl.sequence()[0] == ("delete", "ingress", "iris-canary")


def test_manual_rollback_after_promote_restores_the_previous_digest(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "10")
    cluster("promote")
    cluster.kubectl.calls.clear()
    status, out = cluster("rollback")
    assert status == 0
    assert json.loads(out) == {"rolled_back": "stable", "stable": A, "was": B,
                               "source": "deploy state"}
    assert cluster.kubectl.sequence()[-1] == ("rollout", "iris-stable")
    stable = cluster.kubectl.applied()[("Deployment", "iris-stable")]
    assert deployment_container(stable)["image"] == f"{REPO}@{A}"
    # Nothing older is recorded: a second rollback has nowhere to go.
    assert cluster("rollback")[0] == 2


def test_rendered_manifests_are_kept_in_the_state_dir(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    kept = json.loads((cluster.state_dir / "manifests" / "stable.json").read_text())
    assert kept["kind"] == "List"
    assert [o["kind"] for o in kept["items"]] == ["Deployment", "Service", "Ingress"]


def test_status_reports_tracks_digests_and_weights(cluster):
    cluster("deploy", "--image", f"{REPO}@{A}")
    cluster("canary", "--image", f"{REPO}@{B}", "--weight", "10")
    status = json.loads(cluster("status")[1])
    assert status["tracks"]["stable"] == {"image": f"{REPO}@{A}", "digest": A, "weight": 90}
    assert status["tracks"]["canary"] == {"image": f"{REPO}@{B}", "digest": B, "weight": 10}
    assert status["target"] == "kubernetes"


class MetricsServer(http.server.ThreadingHTTPServer):
    """Serves one pod's /metrics as the service would: counts grow per scrape.

    `served` = (ok, errors): what the pod answered before the test looks.
    """

    daemon_threads = True

    def __init__(self, status, seconds, served=(0, 0)):
        self.metrics = Metrics()
        self.status, self.seconds = status, seconds
        for count, code in zip(served, (200, 500)):
            for _ in range(count):
                self.metrics.observe_request("/v2/models/{model_name}/infer", "POST", code,
                                             seconds)
        self.scrapes = 0
        super().__init__(("127.0.0.1", 0), MetricsHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def restart(self):
        """The pod's process restarts: every counter starts again from zero."""
        self.metrics = Metrics()

    @property
    def url(self):
        """Its /metrics URL."""
        return f"http://127.0.0.1:{self.server_address[1]}/metrics"


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    """Each scrape first records 30 more prediction requests."""

    def do_GET(self):  # pylint: disable=invalid-name
        """The exposition text."""
        self.server.scrapes += 1
        for _ in range(30):
            self.server.metrics.observe_request("/v2/models/{model_name}/infer", "POST",
                                                self.server.status, self.server.seconds)
        body = self.server.metrics.render()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        del args


@pytest.fixture(name="tracks_metrics")
def fixture_tracks_metrics():
    """{"stable": server, "canary": server}; the test sets the canary's behaviour."""
    servers = {"stable": MetricsServer(200, 0.003), "canary": MetricsServer(200, 0.003)}
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


def run_canary(cluster, servers, *extra):
    """`run-canary` of B in three quick steps, gated on the two servers."""
    return cluster("run-canary", "--image", f"{REPO}@{B}", "--steps", "10,50,100",
                   "--interval", "0.2", "--stable-metrics", servers["stable"].url,
                   "--canary-metrics", servers["canary"].url, *extra)


def test_run_canary_steps_the_canary_ingress_weight_and_promotes(cluster, tracks_metrics):
    cluster("deploy", "--image", f"{REPO}@{A}")
    status, out = run_canary(cluster, tracks_metrics, "--auto")
    assert status == 0, out
    weights = [call[2][2]["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/canary-weight"]
        for call in cluster.kubectl.calls
        if call[0] == "apply" and ("Ingress", "iris-canary") in call[1]]
    assert weights == ["10", "50", "100"]
    assert json.loads(out.splitlines()[-1])["report"]["result"] == "promoted"
    stable = cluster.kubectl.applied()[("Deployment", "iris-stable")]
    assert deployment_container(stable)["image"] == f"{REPO}@{B}"
    assert cluster.kubectl.sequence()[-3:] == [("delete", "ingress", "iris-canary"),
                                               ("delete", "service", "iris-canary"),
                                               ("delete", "deployment", "iris-canary")]


def test_run_canary_rolls_back_an_erroring_canary_at_the_first_step(cluster, tracks_metrics):
    cluster("deploy", "--image", f"{REPO}@{A}")
    tracks_metrics["canary"].status = 500
    status, out = run_canary(cluster, tracks_metrics, "--auto")
    assert status == 1
    report = json.loads(out.splitlines()[-1])["report"]
    assert report["result"] == "rolled back"
    assert [s["weight"] for s in report["steps"]] == [10]
    assert cluster.kubectl.sequence()[-3] == ("delete", "ingress", "iris-canary")
    stable = cluster.kubectl.applied()[("Deployment", "iris-stable")]
    assert deployment_container(stable)["image"] == f"{REPO}@{A}"
    assert json.loads(cluster("status")[1])["tracks"]["canary"] is None


def test_run_canary_rolls_back_when_canary_metrics_cannot_be_read(cluster, tracks_metrics):
    cluster("deploy", "--image", f"{REPO}@{A}")
    tracks_metrics["canary"].shutdown()
    tracks_metrics["canary"].socket.close()
    status, out = run_canary(cluster, tracks_metrics)
    assert status == 1
    assert "metrics unreadable" in json.loads(out.splitlines()[-1])["report"]["reasons"][0]


class ServiceFront(http.server.ThreadingHTTPServer):
    """The cluster network for an HTTP client outside it (used as its http_proxy).

    `http://NAME-<track>.<ns>.svc:8080/...` is a Service: each request goes
    to the next pod of the track, round robin, as kube-proxy spreads them.
    """

    daemon_threads = True

    def __init__(self, pods):
        self.pods = pods
        self.turn = {track: 0 for track in pods}
        super().__init__(("127.0.0.1", 0), ServiceHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def pick(self, host):
        """The pod the Service at `host` sends this request to."""
        track = host.split(".", 1)[0].rsplit("-", 1)[-1]
        pods = self.pods[track]
        pod = pods[self.turn[track] % len(pods)]
        self.turn[track] += 1
        return pod


class ServiceHandler(http.server.BaseHTTPRequestHandler):
    """Forwards a proxied GET to the pod the Service picks."""

    def do_GET(self):  # pylint: disable=invalid-name
        """The chosen pod's answer."""
        url = urllib.parse.urlsplit(self.path)
        pod = self.server.pick(url.hostname)
        with urllib.request.urlopen(pod.url.rsplit("/", 1)[0] + url.path, timeout=5) as answer:
            body = answer.read()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        del args


@pytest.fixture(name="pods")
def fixture_pods(cluster, monkeypatch):
    """Two pods per track whose counters differ, in the recorded cluster and behind
    Services (for a client that would read a track through its Service)."""
    servers = {
        # Stable has served for long; its second pod came later.
        "stable": [MetricsServer(200, 0.003, served=(5000, 0)), MetricsServer(200, 0.003)],
        # The canary's first pod is new; its second one had a bad start (20
        # errors, long before this run) and has been healthy since.
        "canary": [MetricsServer(200, 0.003), MetricsServer(200, 0.003, served=(1000, 20))],
    }
    for track, track_pods in servers.items():
        for index, server in enumerate(track_pods):
            cluster.kubectl.add_pod(f"iris-{track}-{index}", track, server.url)
    front = ServiceFront(servers)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{front.server_address[1]}")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    # urlopen's shared opener read the proxy settings when it was first built.
    urllib.request.install_opener(urllib.request.build_opener())
    yield servers
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.ProxyHandler({})))
    for server in [front] + servers["stable"] + servers["canary"]:
        server.shutdown()
        server.server_close()


def canary_on_pods(cluster):
    """A canary of B already at 5 %, then `run-canary` gated on the pods themselves."""
    assert cluster("deploy", "--image", f"{REPO}@{A}")[0] == 0
    assert cluster("canary", "--image", f"{REPO}@{B}", "--weight", "5")[0] == 0
    return cluster("run-canary", "--image", f"{REPO}@{B}", "--steps", "10,50",
                   "--interval", "0.2")


def test_gate_sums_every_pod_of_each_track_not_one_service_answer(cluster, pods):
    status, out = canary_on_pods(cluster)
    report = json.loads(out.splitlines()[-1])["report"]
    assert status == 0, out
    assert report["result"] == "passed"
    for step in report["steps"]:
        assert step["decision"] == "promote", step
        # Each pod was read at the start and once more: 30 requests each in
        # between, so 60 per track and no error, whatever each pod served before.
        assert step["figures"]["canary"]["requests"] == 60
        assert step["figures"]["canary"]["errors"] == 0
        assert step["figures"]["stable"]["requests"] == 60
        assert step["instances"] == {"stable": ["iris-stable-0", "iris-stable-1"],
                                     "canary": ["iris-canary-0", "iris-canary-1"]}
    raw = [call[1] for call in cluster.kubectl.calls if call[0] == "get --raw"]
    assert "/api/v1/namespaces/ml/pods/iris-canary-1:8080/proxy/metrics" in raw
    assert all(server.scrapes == 4 for track in pods.values() for server in track)


def test_gate_counts_a_restarted_pod_from_zero_instead_of_going_negative(cluster, pods):
    pods["stable"][0].restart()
    pods["canary"][1].restart()
    status, out = canary_on_pods(cluster)
    assert status == 0, out
    steps = json.loads(out.splitlines()[-1])["report"]["steps"]
    assert [s["figures"]["canary"]["requests"] for s in steps] == [60, 60]


def test_a_ready_pod_whose_metrics_cannot_be_read_aborts_naming_it(cluster, pods):
    pods["canary"][0].shutdown()
    pods["canary"][0].socket.close()
    status, out = canary_on_pods(cluster)
    assert status == 1
    reasons = json.loads(out.splitlines()[-1])["report"]["reasons"]
    assert "cannot read the metrics of pod iris-canary-0" in reasons[0]


@pytest.mark.usefixtures("pods")
def test_a_pod_not_ready_that_cannot_be_read_is_left_out(cluster):
    cluster.kubectl.add_pod("iris-canary-2", "canary", "http://127.0.0.1:9/metrics",
                            ready=False)
    status, out = canary_on_pods(cluster)
    assert status == 0, out
    steps = json.loads(out.splitlines()[-1])["report"]["steps"]
    assert steps[0]["instances"]["canary"] == ["iris-canary-0", "iris-canary-1"]
