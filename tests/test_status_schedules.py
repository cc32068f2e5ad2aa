"""`conductor status` shows each schedule's missed and recent runs, and the stuck deployments (the live view and
`/metrics` too), from real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import redis
from prometheus_client import CollectorRegistry, generate_latest

from service.live_view import LiveView
from service.status import read_status, render
from service.stuck_metrics import StuckCollector
from tests.support.stack import rules_text
from workers.approval_records import ApprovalStore
from workers.keys import RedisKeys
from workers.plans import PlanStore
from workers.promotion_schedule import PromotionScheduler
from workers.retention import DEFAULT_RETENTION
from workers.rules import parse_rules
from workers.runner import worker_context
from workers.schedule_runs import ScheduleRuns
from workers.stuck_deployments import StuckDeployment, StuckStore

LONDON = ZoneInfo("Europe/London")
SCHEDULE = {"name": "noon-and-evening", "cron": "0 12,19 * * *", "timezone": "Europe/London", "to": "Test"}
RULES = rules_text(window=0, orchestration={"schedules": [{**SCHEDULE, "grace_seconds": 600}]})


def test_status_shows_a_schedules_missed_and_recent_runs(connection: redis.Redis, keys: RedisKeys) -> None:
    context = worker_context(connection=connection, keys=keys, rules=parse_rules(RULES))
    on_time = PromotionScheduler(context, clock=lambda: datetime(2026, 12, 1, 12, 0, 3, tzinfo=LONDON))
    (queued,) = on_time.tick()
    ScheduleRuns(connection, keys.prefix).planned("sample-app", "noon-and-evening", queued.due.isoformat(), "plan-7")
    on_time.stop()
    # No scheduler ran at 19:00 or the next noon; one comes back the next evening, past the grace.
    late = PromotionScheduler(context, clock=lambda: datetime(2026, 12, 2, 18, 0, tzinfo=LONDON))
    (missed,) = late.tick()

    status = read_status(connection, keys)
    shown = render(status)

    assert (queued.outcome, missed.outcome) == ("queued", "missed")
    assert [(run["due"], run["outcome"], run["plan"]) for run in status.schedule_runs] == [
        ("2026-12-02T12:00:00+00:00", "missed", None),
        ("2026-12-01T12:00:00+00:00", "queued", "plan-7"),
    ]
    assert "  sample-app/noon-and-evening: 2 recent, 1 missed" in shown
    assert "      2026-12-02T12:00:00+00:00  missed: 21600 s late, past its grace of 600 s" in shown
    assert "      2026-12-01T12:00:00+00:00  queued: plan-7" in shown
    assert 0 < connection.ttl(f"{keys.prefix}:schedule-runs") <= DEFAULT_RETENTION.seconds


def test_status_shows_each_stuck_deployment_with_its_note(connection: redis.Redis, keys: RedisKeys) -> None:
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    record = StuckDeployment(
        task_id="ServerTasks-9",
        deployment_id="Deployments-4",
        space_id="Spaces-1",
        project_id="Projects-1",
        project="Database",
        environment_id="Environments-2",
        environment="Test",
        tenant_id=None,
        orchestration="sample-app",
        limit_seconds=600,
        running_seconds=612.4,
        action="reported",
        note="Deployments-4 (Database to Test) ran 612.4 s, past stuck_after_seconds 600; reported only.",
        seen_at=at,
        updated_at=at,
    )
    store = StuckStore(connection, keys.prefix)
    assert store.report(record)
    assert not store.report(record)  # once per task
    retention = DEFAULT_RETENTION.seconds
    for key in ("stuck:ServerTasks-9", "stuck-index"):
        assert 0 < connection.ttl(f"{keys.prefix}:{key}") <= retention, key

    shown = render(read_status(connection, keys))

    assert "  ServerTasks-9  reported       Database to Test  Deployments-4  ran 612 s of 600 s (sample-app)" in shown
    assert f"      {record.note}" in shown
    live = LiveView(
        plans=PlanStore(connection, keys.prefix), approvals=ApprovalStore(connection, keys.prefix), stuck=store
    ).render_status()
    assert '<tr class="stuck-deployment" data-task="ServerTasks-9" data-action="reported">' in live
    assert "612 s of 600 s" in live
    registry = CollectorRegistry()
    registry.register(StuckCollector(connection=connection, prefix=keys.prefix))
    assert 'conductor_stuck_deployments_total{action="reported"} 1.0' in generate_latest(registry).decode()
