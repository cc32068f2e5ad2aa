"""The intake's per-event metrics are exposed exactly as prometheus_client's own Counter and Histogram expose
the same observations (their `_created` times aside, which are when each was made)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from service.metrics import EVENTS_HELP, LATENCY_BUCKETS, LATENCY_HELP, IntakeMetrics, category_label


def exposition(registry: CollectorRegistry) -> str:
    return re.sub(r"(_created(\{[^}]*\})?) \S+", r"\1 <time>", generate_latest(registry).decode())


EVENTS = [
    ("MachineAdded", "queued"),
    ("MachineAdded", "queued"),
    ("DeploymentFailed", "duplicate"),
    ("SomethingNew", "ignored"),  # counted as "other"
    ("Created", "ignored"),
]
# Bucket bounds exactly, just past them, below the first, past the last.
LATENCIES = [0.0, 1e-9, 0.0005, 0.00051, 0.003, 0.1, 0.1000001, 5.0, 7.5]


@pytest.mark.parametrize("events", [EVENTS, []], ids=["events", "no-events"])
def test_events_latency_and_refusals_are_exposed_as_prometheus_clients_own_metrics(
    events: list[tuple[str, str]],
) -> None:
    ours = CollectorRegistry()
    metrics = IntakeMetrics(ours)
    reference = CollectorRegistry()
    counted = Counter("conductor_webhook_events", EVENTS_HELP, ["category", "outcome"], registry=reference)
    refused = Counter(
        "conductor_webhook_rejected", "Webhook requests rejected, by reason.", ["reason"], registry=reference
    )
    timed = Histogram("conductor_webhook_seconds", LATENCY_HELP, buckets=LATENCY_BUCKETS, registry=reference)

    for category, outcome in events:
        metrics.count_event(category, outcome)
        counted.labels(category_label(category), outcome).inc()
    for seconds in LATENCIES if events else []:
        metrics.observe_latency(seconds)
        timed.observe(seconds)
    metrics.rejected.labels("unauthorized").inc()
    refused.labels("unauthorized").inc()

    assert exposition(ours) == exposition(reference)
    if events:
        assert 'conductor_webhook_events_total{category="MachineAdded",outcome="queued"} 2.0' in exposition(ours)
        assert 'conductor_webhook_events_total{category="other",outcome="ignored"} 1.0' in exposition(ours)
        assert 'conductor_webhook_seconds_bucket{le="0.0005"} 3.0' in exposition(ours)
