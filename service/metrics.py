"""Prometheus metrics of the intake, in a registry of its own per app."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
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


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "conductor_webhook_events",
            "Webhook events accepted, by category and outcome (queued, duplicate, ignored).",
            ["category", "outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "conductor_webhook_rejected",
            "Webhook requests rejected, by reason.",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "conductor_webhook_seconds",
            "Time from a webhook request's arrival to its answer.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        self._event_counts: dict[tuple[str, str], Counter] = {}

    def count_event(self, category: str, outcome: str) -> None:
        """`events` by category and outcome; each labelled child looked up once (the label set is bounded)."""
        key = (category_label(category), outcome)
        child = self._event_counts.get(key)
        if child is None:
            child = self._event_counts[key] = self.events.labels(*key)
        child.inc()


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
