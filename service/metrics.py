"""Prometheus metrics of the intake, in a registry of its own per app."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable

import redis
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from rq import Queue
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

# Categories named in Octopus's documentation; anything else is counted as "other" so that a hostile
# sender cannot grow the label set without bound.
KNOWN_CATEGORIES = frozenset(
    {
        "MachineAdded", "MachineDeleted", "MachineCleanupFailed",
        "MachineDeploymentRelatedPropertyWasUpdated",
        "MachineDisabled", "MachineEnabled", "MachineHealthy", "MachineUnavailable", "MachineUnhealthy",
        "MachineHasWarnings", "DeploymentQueued", "DeploymentStarted", "DeploymentResumed",
        "DeploymentSucceeded", "DeploymentFailed", "ManualInterventionInterruptionRaised",
        "GuidedFailureInterruptionRaised", "Created", "Modified", "Deleted",
    }
)  # fmt: skip


def category_label(category: str) -> str:
    return category if category in KNOWN_CATEGORIES else "other"


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
EVENTS_HELP = "Webhook events accepted, by category and outcome (queued, duplicate, ignored)."
LATENCY_HELP = "Time from a webhook request's arrival to its answer."


class IntakeMetrics:
    """The intake's metrics. The two touched by every event, `conductor_webhook_events` and
    `conductor_webhook_seconds`, are counted in plain Python values and exposed by collectors of their own in
    exactly the form prometheus_client's Counter and Histogram give them (tests/test_metrics.py): those took
    two locks, several calls and a bucket search in Python per event, 3 % of the intake's instructions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # (category label, outcome) -> [count, created]; the label set is bounded (`category_label`).
        self._event_counts: dict[tuple[str, str], list[float]] = {}
        self._latency_bounds = (*LATENCY_BUCKETS, float("inf"))
        self._latency_counts = [0] * len(self._latency_bounds)
        self._latency_sum = 0.0
        self._latency_created = time.time()
        registry.register(_EventsCollector(self))
        self.rejected = Counter(
            "conductor_webhook_rejected",
            "Webhook requests rejected, by reason.",
            ["reason"],
            registry=registry,
        )
        registry.register(_LatencyCollector(self))

    def count_event(self, category: str, outcome: str) -> None:
        """`conductor_webhook_events` by category and outcome."""
        key = (category_label(category), outcome)
        counted = self._event_counts.get(key)
        if counted is None:
            self._event_counts[key] = [1, time.time()]
        else:
            counted[0] += 1

    def observe_latency(self, seconds: float) -> None:
        """`conductor_webhook_seconds`: the first bucket whose bound is at least `seconds`, as Histogram does."""
        self._latency_counts[bisect_left(self._latency_bounds, seconds)] += 1
        self._latency_sum += seconds


class _EventsCollector(Collector):
    def __init__(self, metrics: IntakeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        # Scrapes run in a worker thread while the event loop counts: copy first (atomic under the GIL).
        counts = [(key, list(counted)) for key, counted in list(self._metrics._event_counts.items())]
        family = CounterMetricFamily("conductor_webhook_events", EVENTS_HELP, labels=["category", "outcome"])
        for (category, outcome), (count, created) in counts:
            family.add_metric([category, outcome], float(count), created=created)
        return [family]


class _LatencyCollector(Collector):
    def __init__(self, metrics: IntakeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        metrics = self._metrics
        counts, total = list(metrics._latency_counts), metrics._latency_sum
        cumulative, buckets = 0, []
        for bound, count in zip(metrics._latency_bounds, counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), float(cumulative)))  # type: ignore[no-untyped-call]
        family = HistogramMetricFamily("conductor_webhook_seconds", LATENCY_HELP)
        family.add_metric([], buckets, total)
        family.add_sample("conductor_webhook_seconds_created", {}, metrics._latency_created)
        return [family]


class QueueCollector(Collector):
    """Queue depth and failed jobs, read from Redis when metrics are scraped."""

    def __init__(self, *, connection: redis.Redis, queue_name: str) -> None:
        self._queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily("conductor_queue_depth", "Events waiting for a worker.", labels=["queue"])
        failed = GaugeMetricFamily("conductor_failed_jobs", "Jobs in RQ's failed registry.", labels=["queue"])
        up = GaugeMetricFamily("conductor_redis_up", "1 when Redis answered this scrape.")
        try:
            depth.add_metric([self._queue.name], self._queue.count)
            failed.add_metric([self._queue.name], FailedJobRegistry(queue=self._queue).count)
            up.add_metric([], 1)
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            return [up]
        return [depth, failed, up]
