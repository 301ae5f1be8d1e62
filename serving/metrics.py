"""Prometheus metrics of the service, in a registry of its own (served at /metrics)."""

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    """Every metric the service exports. Label children are cached: observing is hot."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "modelship_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=r)
        self._latency = Histogram(
            "modelship_http_request_duration_seconds",
            "Time from request start to response, by route template, method and status.",
            ["route", "method", "status"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "modelship_batch_size_rows", "Rows given to each kernel call (dynamic batching).",
            buckets=_BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "modelship_queue_depth_rows", "Rows waiting for a kernel call.", registry=r)
        self._cache_hits = Counter(
            "modelship_cache_hits", "Result cache hits (images).", ["backend"], registry=r)
        self._cache_misses = Counter(
            "modelship_cache_misses", "Result cache misses (images).", ["backend"], registry=r)
        self._cache_errors = Counter(
            "modelship_cache_errors", "Result cache backend failures (answered as misses).",
            ["backend"], registry=r)
        self._model_info = Gauge(
            "modelship_model_info", "The served model (value 1); version = artifact sha256.",
            ["name", "version"], registry=r)
        self.ready = Gauge("modelship_ready", "1 when the model is loaded and warmed up.",
                           registry=r)
        self._requests_in_flight = Gauge(
            "modelship_requests_in_flight",
            "Requests with a body being received or served (bounded by "
            "MODELSHIP_MAX_REQUESTS_IN_FLIGHT).", registry=r)
        self._body_bytes_in_flight = Gauge(
            "modelship_body_bytes_in_flight",
            "Body bytes admitted for requests being received or served (bounded by "
            "MODELSHIP_MAX_BODY_BYTES_IN_FLIGHT).", registry=r)
        self._children = {}

    def observe_request(self, route, method, status, seconds):
        """Counts one answered request and its latency."""
        key = (route, method, status)
        pair = self._children.get(key)
        if pair is None:
            labels = (route, method, str(status))
            pair = self._children[key] = (self._requests.labels(*labels),
                                          self._latency.labels(*labels))
        pair[0].inc()
        pair[1].observe(seconds)

    def cache_stats(self, backend):
        """Callbacks (hit, miss, error) counting for one cache backend."""
        hits = self._cache_hits.labels(backend)
        misses = self._cache_misses.labels(backend)
        errors = self._cache_errors.labels(backend)
        return hits.inc, misses.inc, errors.inc

    def watch_in_flight(self, admission):
        """Publishes what `admission` (admission.Admission) holds, read at each scrape."""
        self._requests_in_flight.set_function(lambda: admission.requests)
        self._body_bytes_in_flight.set_function(lambda: admission.bytes)

    def set_model(self, name, version):
        """Publishes the served model (modelship_model_info)."""
        self._model_info.labels(name, version).set(1)

    def render(self):
        """The exposition text of every metric."""
        return prometheus_client.generate_latest(self.registry)
