"""The stuck deployments' counters (`workers.stuck_deployments`) as Prometheus metrics, read from Redis when
metrics are scraped."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.stuck_deployments import StuckStore


class StuckCollector(Collector):
    """`conductor_stuck_deployments_total{action}`: `reported` and `cancelling` count deployments found past their
    limit; `canceled`, `ended`, `left_to_people`, `left_to_plan` and `refused` what became of the cancels."""

    def __init__(self, *, connection: redis.Redis, prefix: str) -> None:
        self._store = StuckStore(connection, prefix)

    def collect(self) -> Iterable[Metric]:
        counter = CounterMetricFamily(
            "conductor_stuck_deployments",
            "Deployments past their orchestration's stuck_after_seconds, and what became of them.",
            labels=["action"],
        )
        try:
            counts = self._store.counts()
        except (redis.RedisError, OSError):
            return []  # conductor_redis_up says so
        for action, count in sorted(counts.items()):
            counter.add_metric([action], count)
        return [counter]
