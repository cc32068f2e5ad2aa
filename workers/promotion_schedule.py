"""Promotions on a schedule: `conductor scheduler` fires the rules' `schedules` (cron, in a time zone).

Each tick (every second) looks, for every schedule, at its latest fire time up to now: one not fired yet is
queued as an RQ job once, and the workers run it as a promotion on demand (`workers.promotion_on_demand`):
nobody approved it as a whole, so nothing is approved on anyone's behalf. A fire time missed while no
scheduler ran is run once when one comes back within the schedule's `grace_seconds`, and reported as missed
after that (in the log and in `conductor status`, through `workers.schedule_runs`). Every run and every miss
is recorded under the fire time, with the retention, so that two schedulers (or two ticks) never run one
fire time twice; and only the holder of a Redis lock ticks at all.
The clock is a parameter, so that tests move time by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter

from workers.events import utcnow
from workers.promotion_on_demand import PromotionRequest, promote_on_demand
from workers.rules import Orchestration, ScheduleRule
from workers.runtime import WorkerContext
from workers.schedule_runs import ScheduleRuns

log = structlog.get_logger("conductor.scheduler")

SCHEDULED_PROMOTION_JOB = "workers.jobs.scheduled_promotion"
LOCK = "promotion-scheduler"
LOCK_SECONDS = 15

Outcome = Literal["queued", "missed"]


@dataclass(frozen=True)
class ScheduleRun:
    orchestration: str
    schedule: str
    due: datetime
    outcome: Outcome


def latest_due(rule: ScheduleRule, now: datetime) -> datetime:
    """The schedule's latest fire time at or before `now`, in UTC (cron times fall on whole minutes, so a
    second past `now` makes `now` itself count)."""
    local = now.astimezone(ZoneInfo(rule.timezone)) + timedelta(seconds=1)
    due: datetime = croniter(rule.cron, local).get_prev(datetime)
    return due.astimezone(UTC)


class PromotionScheduler:
    """Ticks the schedules, when it holds the lock."""

    def __init__(
        self, context: WorkerContext, *, clock: Callable[[], datetime] = utcnow, name: str | None = None
    ) -> None:
        self.context = context
        self.clock = clock
        self.name = name or f"scheduler-{uuid.uuid4().hex[:8]}"

    def tick(self) -> list[ScheduleRun]:
        """One pass over every schedule; returns what it queued or found missed (nothing when another acts)."""
        if not self.context.locks.acquire(LOCK, self.name, ttl_seconds=LOCK_SECONDS):
            return []
        now = self.clock()
        runs = []
        for orchestration in self.context.require_rules().orchestrations:
            for rule in orchestration.schedules:
                run = self._consider(orchestration, rule, now)
                if run is not None:
                    runs.append(run)
        return runs

    def stop(self) -> None:
        self.context.locks.release(LOCK, self.name)

    def _runs(self) -> ScheduleRuns:
        return ScheduleRuns(self.context.redis, self.context.keys.prefix, retention=self.context.retention)

    def _consider(self, orchestration: Orchestration, rule: ScheduleRule, now: datetime) -> ScheduleRun | None:
        due = latest_due(rule, now)
        late = (now - due).total_seconds()
        outcome: Outcome = "queued" if late <= rule.grace_seconds else "missed"
        key = f"{self.context.keys.prefix}:schedule-run:{orchestration.name}:{rule.name}:{due.isoformat()}"
        if not self.context.redis.set(key, outcome, nx=True, ex=self.context.retention.seconds):
            return None  # this fire time was run, or reported missed, already
        run = ScheduleRun(orchestration.name, rule.name, due, outcome)
        self._runs().record(
            orchestration.name, rule.name, due, outcome, late_seconds=late, grace_seconds=rule.grace_seconds
        )
        if outcome == "missed":
            log.warning(
                "schedule missed",
                orchestration=orchestration.name,
                schedule=rule.name,
                due=due.isoformat(),
                late_seconds=round(late),
                grace_seconds=rule.grace_seconds,
            )
            return run
        queue = self.context.require_scheduler()
        queue.soon(SCHEDULED_PROMOTION_JOB, orchestration.name, rule.name, due.isoformat())
        log.info("schedule fired", orchestration=orchestration.name, schedule=rule.name, due=due.isoformat())
        return run


def run_schedule(orchestration_name: str, schedule_name: str, due: str, context: WorkerContext) -> dict[str, Any]:
    """The job a fired schedule queues: its promotion, on demand."""
    orchestration = next(item for item in context.require_rules().orchestrations if item.name == orchestration_name)
    rule = next(item for item in orchestration.schedules if item.name == schedule_name)
    request = PromotionRequest(
        orchestration=orchestration_name, to=rule.to, source=rule.source, tenant=rule.tenant, what_if=rule.what_if
    )
    plan = promote_on_demand(request, context, requested_by=f"schedule {schedule_name}, due {due}")
    ScheduleRuns(context.redis, context.keys.prefix, retention=context.retention).planned(
        orchestration_name, schedule_name, due, plan.id
    )
    return {"plan": plan.id, "status": plan.status}
