"""Prometheus metrics: requests by route, jobs by status, queue depth, training speed."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.repositories import jobs as job_repo
from service.runtime import Runtime
from service.states import JobState

log = logging.getLogger(__name__)
# Any other token is a valid method to the server; as a label each would be a series of its own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Process-wide, as Prometheus metrics are: requests and sampling times of every app in the process.
registry = CollectorRegistry()
REQUESTS = Counter("wgan_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry)
LATENCY = Histogram(
    "wgan_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=registry,
)
SAMPLE_LATENCY = Histogram(
    "wgan_sample_seconds", "Time to produce samples", ["format"], buckets=LATENCY_BUCKETS, registry=registry
)
SAMPLE_REQUESTS_SHARED = Counter(
    "wgan_sample_requests_shared_total",
    "Sample requests computed in the padding of another request's pass (app.sample_batches)",
    registry=registry,
)


class StateCollector(Collector):
    """Read at scrape time from the database (the one source of truth) and the broker."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterable[Metric]:
        # By stored state: "waiting" (held for the owner's capacity) apart from "queued" (task sent).
        jobs = GaugeMetricFamily("wgan_jobs", "Jobs by state", labels=["status"])
        speed = GaugeMetricFamily(
            "wgan_training_steps_per_second", "Generator steps/s of running jobs", labels=["job_id", "worker"]
        )
        try:
            with self.rt.db.reads() as session:
                counts = job_repo.count_by_state(session)
                for job in job_repo.running(session):
                    seconds = (job.latest_metrics or {}).get("seconds_per_step")
                    if seconds:
                        speed.add_metric([job.id, job.claimed_by or ""], 1.0 / seconds)
        except Exception as exc:
            log.warning("metrics: database unavailable: %s", exc)
            counts = {}
        for state in JobState:
            jobs.add_metric([state.value], counts.get(state, 0))
        yield jobs
        yield speed
        depth = GaugeMetricFamily("wgan_queue_depth", "Tasks waiting in each broker queue", labels=["queue"])
        for queue, count in self.rt.tasks.depths().items():
            depth.add_metric([queue], count)
        yield depth


def state_registry(rt: Runtime) -> CollectorRegistry:
    """An app's own registry: the state of the deployment its Runtime reaches, read at scrape time."""
    states = CollectorRegistry(auto_describe=False)
    states.register(StateCollector(rt))
    return states


def route_of(scope: Scope) -> str:
    """The route template ('/api/v1/jobs/{job_id}'), so ids do not explode the label space.

    The router records the matched route in the scope as it dispatches.
    """
    return str(getattr(scope.get("route"), "path", "unmatched"))


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Each (method, route, status)'s children, found once: labels() validates and locks every call.
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._latencies: dict[tuple[str, str], Histogram] = {}

    def _record(self, method: str, route: str, status: int, seconds: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters.setdefault((method, route, status), REQUESTS.labels(method, route, str(status)))
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies.setdefault((method, route), LATENCY.labels(method, route))
        counter.inc()
        latency.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self._record(method, route_of(scope), status, time.perf_counter() - start)
