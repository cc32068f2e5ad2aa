"""Stuck deployments: any deployment of an orchestration's components, whoever made it, whose running time passes
the orchestration's `stuck_after_seconds` is reported; with `cancel_stuck: true` it is canceled, with a note.

Running time is `workers.running_time`'s: only the time between two looks that both saw the task executing with
no pending interruption counts. The watcher (`workers.running_watch`) looks every few seconds and keeps each
task's tally in Redis, so that a watcher taking over carries it on. A task first seen mid-run counts from that
look, never from its start (it may have waited on people before), and a gap between looks longer than
`LONGEST_GAP_SECONDS` (no watcher looked meanwhile) does not count: when unsure, the conductor undercounts.

Each task is reported once (a record per task, kept for the retention). The cancel is a job that reads the task
again first: a task that finished meanwhile, or now waits on a person (a pending interruption), is left alone and
the record says so. Octopus has no comment on a task, so the note lives where people look at the conductor: the
record (`conductor status`), the log line, and, when a plan step owns the deployment, the step's reason: the
step is canceled through its own path (`cancelling`, then failed with the note once Octopus reports it
canceled), under the plan's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import redis
import structlog
from pydantic import BaseModel

from workers.directory import UnknownName
from workers.events import utcnow
from workers.octopus import OctopusRequestFailed
from workers.plan_advance import plan_lock
from workers.plan_steps import ADVANCE_PLAN_JOB
from workers.redis_client import as_text
from workers.retention import DEFAULT_RETENTION, Retention
from workers.running_deployments import RunningDeployment
from workers.running_time import RunningTime, is_running, tally
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.stuck")

CANCEL_STUCK_JOB = "workers.jobs.cancel_stuck_deployment"
# A tally outlives its task's last sighting by this long, then expires.
TALLY_SECONDS = 3600
# Looks further apart than this (no watcher looked meanwhile) do not count: the task may have waited on people.
LONGEST_GAP_SECONDS = 30.0

# reported: over its limit, cancel_stuck off; cancelling: the cancel job is queued; canceled: cancel sent;
# left_to_people: a person is asked for something (pending interruption), so the conductor does not touch it;
# ended: it finished before the cancel; left_to_plan: its plan step is canceling it already; refused: Octopus
# refused the cancel (its message in the note).
StuckAction = Literal["reported", "cancelling", "canceled", "left_to_people", "ended", "left_to_plan", "refused"]


@dataclass(frozen=True)
class StuckLimit:
    orchestration: str
    seconds: int
    cancel: bool


class StuckDeployment(BaseModel):
    task_id: str
    deployment_id: str
    space_id: str
    project_id: str
    project: str
    environment_id: str
    environment: str
    tenant_id: str | None
    orchestration: str
    limit_seconds: int
    running_seconds: float
    action: StuckAction
    note: str
    plan_id: str | None = None
    seen_at: datetime
    updated_at: datetime


def stuck_limits(context: WorkerContext) -> dict[str, dict[str, StuckLimit]]:
    """Per space id, per component project id, the smallest `stuck_after_seconds` that covers it."""
    _, directory = context.octopus_api()
    limits: dict[str, dict[str, StuckLimit]] = {}
    for orchestration in context.require_rules().orchestrations:
        seconds = orchestration.stuck_after_seconds
        if seconds is None:
            continue
        for component in orchestration.components:  # each in its own space (`space:`)
            try:
                space_id = directory.space_id(orchestration.space_of(component))
                project_id = str(directory.project(space_id, component.project)["Id"])
            except UnknownName as unknown:
                log.warning("stuck deployments: name unknown", orchestration=orchestration.name, error=str(unknown))
                continue
            in_space = limits.setdefault(space_id, {})
            known = in_space.get(project_id)
            if known is None or seconds < known.seconds:
                in_space[project_id] = StuckLimit(orchestration.name, seconds, orchestration.cancel_stuck)
    return limits


class StuckStore:
    """Running-time tallies of watched tasks (short-lived) and stuck records (kept for the retention)."""

    def __init__(self, connection: redis.Redis, prefix: str, *, retention: Retention = DEFAULT_RETENTION) -> None:
        self._redis = connection
        self._prefix = prefix
        self._retention = retention

    @classmethod
    def of(cls, context: WorkerContext) -> StuckStore:
        return cls(context.redis, context.keys.prefix, retention=context.retention)

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def tallies(self, task_ids: list[str]) -> dict[str, RunningTime]:
        if not task_ids:
            return {}
        raws = self._redis.mget([self._key("running-tally", task_id) for task_id in task_ids])
        return {
            task_id: RunningTime.model_validate_json(raw)
            for task_id, raw in zip(task_ids, raws, strict=True)
            if raw is not None
        }

    def save_tallies(self, tallies: dict[str, RunningTime]) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            for task_id, running in tallies.items():
                pipe.set(self._key("running-tally", task_id), running.model_dump_json(), ex=TALLY_SECONDS)
            pipe.execute()

    def report(self, record: StuckDeployment) -> bool:
        """Record a stuck task, once: False when it was recorded before."""
        key = self._key("stuck", record.task_id)
        if not self._redis.set(key, record.model_dump_json(), nx=True, ex=self._retention.seconds):
            return False
        with self._redis.pipeline(transaction=True) as pipe:
            self._retention.index(pipe, self._key("stuck-index"), record.task_id, at=record.seen_at, now=utcnow())
            pipe.hincrby(self._key("stuck-counts"), record.action, 1)
            pipe.execute()
        return True

    def update(self, record: StuckDeployment, action: StuckAction, note: str) -> StuckDeployment:
        changed = record.model_copy(update={"action": action, "note": note, "updated_at": utcnow()})
        with self._redis.pipeline(transaction=True) as pipe:
            self._retention.keep(pipe, self._key("stuck", record.task_id), changed.model_dump_json(), ended=True)
            pipe.hincrby(self._key("stuck-counts"), action, 1)
            pipe.execute()
        return changed

    def load(self, task_id: str) -> StuckDeployment | None:
        raw = self._redis.get(self._key("stuck", task_id))
        return None if raw is None else StuckDeployment.model_validate_json(raw)

    def recent(self, limit: int = 20) -> list[StuckDeployment]:
        found = self._redis.zrevrange(self._key("stuck-index"), 0, limit - 1)
        ids = [as_text(item) for item in found]  # type: ignore[arg-type]
        raws = self._redis.mget([self._key("stuck", task_id) for task_id in ids]) if ids else []
        return [StuckDeployment.model_validate_json(raw) for raw in raws if raw is not None]

    def counts(self) -> dict[str, int]:
        """How many stuck deployments ended in each action, ever (a handful of counters)."""
        found: dict[Any, Any] = self._redis.hgetall(self._key("stuck-counts"))
        return {as_text(action): int(count) for action, count in found.items()}


def tally_running(store: StuckStore, running: list[RunningDeployment], *, at: datetime) -> dict[str, RunningTime]:
    """One more look at each task: its running time so far, conservatively (see the module's docstring)."""
    previous = store.tallies([item.task_id for item in running])
    tallies = {}
    for item in running:
        before = previous.get(item.task_id, RunningTime())
        if before.last_look_at is not None and (at - before.last_look_at).total_seconds() > LONGEST_GAP_SECONDS:
            before = before.model_copy(update={"last_look_running": False})
        tallies[item.task_id] = tally(before, running=is_running(item.task), at=at)
    store.save_tallies(tallies)
    return tallies


def watch_for_stuck(
    context: WorkerContext, running: list[RunningDeployment], limits: dict[str, StuckLimit], *, at: datetime
) -> list[StuckDeployment]:
    """Tally the covered tasks of one space; report each one newly past its limit, and queue its cancel."""
    store = StuckStore.of(context)
    covered = [item for item in running if item.project_id in limits]
    tallies = tally_running(store, covered, at=at)
    reported = []
    for item in covered:
        limit = limits[item.project_id]
        seconds = tallies[item.task_id].seconds
        if seconds <= limit.seconds:
            continue
        record = _record(context, item, limit, seconds, at=at)
        if not store.report(record):
            continue
        reported.append(record)
        log.warning(
            "stuck deployment",
            deployment=item.deployment_id,
            task=item.task_id,
            project=record.project,
            environment=record.environment,
            running_seconds=round(seconds),
            limit_seconds=limit.seconds,
            orchestration=limit.orchestration,
            action=record.action,
            note=record.note,
        )
        if limit.cancel:
            context.require_scheduler().soon(CANCEL_STUCK_JOB, item.task_id)
    return reported


def _record(
    context: WorkerContext, item: RunningDeployment, limit: StuckLimit, seconds: float, *, at: datetime
) -> StuckDeployment:
    _, directory = context.octopus_api()
    project = str(directory.project_by_id(item.space_id, item.project_id)["Name"])
    environment = str(directory.environment_by_id(item.space_id, item.environment_id)["Name"])
    why = (
        f"ran {seconds:.1f} s, past stuck_after_seconds {limit.seconds} of orchestration {limit.orchestration} "
        "(running time: waiting on people does not count)"
    )
    what = f"{item.deployment_id} ({project} to {environment}{f' for {item.tenant_id}' if item.tenant_id else ''})"
    if limit.cancel:
        action: StuckAction = "cancelling"
        note = f"Release Conductor cancels {what}: it {why}; cancel_stuck is true."
    else:
        action = "reported"
        note = f"{what} {why}; reported only: cancel_stuck is false."
    return StuckDeployment(
        task_id=item.task_id,
        deployment_id=item.deployment_id,
        space_id=item.space_id,
        project_id=item.project_id,
        project=project,
        environment_id=item.environment_id,
        environment=environment,
        tenant_id=item.tenant_id,
        orchestration=limit.orchestration,
        limit_seconds=limit.seconds,
        running_seconds=seconds,  # unrounded: a record past its limit never reads as at it
        action=action,
        note=note,
        seen_at=at,
        updated_at=at,
    )


def cancel_stuck(task_id: str, context: WorkerContext) -> dict[str, Any]:
    """The job a stuck task queues: read it again, and cancel it unless it ended or now waits on a person."""
    store = StuckStore.of(context)
    record = store.load(task_id)
    if record is None or record.action != "cancelling":
        return {"task": task_id, "action": record.action if record else "unknown"}
    client, _ = context.octopus_api()
    task = client.get(f"/api/tasks/{task_id}")
    if task.get("IsCompleted"):
        state = task.get("State")
        record = store.update(record, "ended", f"{record.note} When it came to cancel it, Octopus had it {state}.")
    elif task.get("HasPendingInterruptions"):
        record = store.update(
            record, "left_to_people", f"{record.note} Not canceled: it waits on a person now, who decides."
        )
    else:
        plan_id = context.plans.plan_for_deployment(record.deployment_id)
        if plan_id is not None:
            return _cancel_plan_step(plan_id, record, context)
        refused = _send_cancel(context, record)
        if refused is not None:
            record = store.update(record, "refused", refused)
        else:
            record = store.update(record, "canceled", record.note.replace(" cancels ", " canceled ", 1))
    log.warning("stuck deployment settled", task=task_id, deployment=record.deployment_id, action=record.action)
    return {"task": task_id, "action": record.action}


def _send_cancel(context: WorkerContext, record: StuckDeployment) -> str | None:
    """Cancel the task; None when sent, else the note saying why Octopus refused it (the record ends there)."""
    client, _ = context.octopus_api()
    try:
        client.post(f"/api/tasks/{record.task_id}/cancel", None)
    except OctopusRequestFailed as refused:
        return f"{record.note} Octopus refused the cancel: {refused}"
    return None


def _cancel_plan_step(plan_id: str, record: StuckDeployment, context: WorkerContext) -> dict[str, Any]:
    """A plan step owns the deployment: cancel it as the step's own limit would, under the plan's lock, so that
    the step shows why and fails with the note once Octopus reports the task canceled."""
    store = StuckStore.of(context)
    with plan_lock(plan_id, context) as held:
        if not held:
            context.require_scheduler().soon(CANCEL_STUCK_JOB, record.task_id, delay=1.0)
            return {"task": record.task_id, "deferred": "another worker is moving its plan"}
        plan = context.plans.load(plan_id)
        step = next((s for s in plan.steps if s.deployment_id == record.deployment_id), None) if plan else None
        note = record.note.replace(" cancels ", " canceled ", 1)
        if plan is not None and step is not None and step.status == "cancelling":
            record = store.update(record, "left_to_plan", f"{record.note} Its plan {plan_id} cancels it already.")
        elif (refused := _send_cancel(context, record)) is not None:
            record = store.update(record, "refused", refused)
        else:
            if plan is not None and step is not None and step.status == "deploying":
                step.status = "cancelling"
                step.cancel_requested_at = utcnow()
                step.cancel_reason = note
                step.reason = f"{note} Failed once Octopus has ended it."
                context.plans.save(plan)
                context.require_scheduler().soon(ADVANCE_PLAN_JOB, plan_id)
            record = store.update(record.model_copy(update={"plan_id": plan_id}), "canceled", note)
    log.warning("stuck deployment settled", task=record.task_id, plan=plan_id, action=record.action)
    return {"task": record.task_id, "action": record.action, "plan": plan_id}
