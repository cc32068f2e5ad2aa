"""The RQ job entry points. Each only translates its JSON arguments and calls the code that does the work.

A `PermanentError` ends the job in RQ's failed registry at once, with its message as the reason; any
other error is retried with the job's backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from rq import get_current_job

from workers import (
    approval_relay,
    dispatch,
    notify_delivery,
    plan_advance,
    promotion,
    promotion_schedule,
    redeploy,
    runtime,
    stuck_deployments,
    task_watcher,
)
from workers.errors import PermanentError
from workers.events import QueuedEvent
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.worker")


def handle_event(job_argument: dict[str, Any]) -> dict[str, Any]:
    queued = QueuedEvent.model_validate(job_argument)
    return _run(
        lambda context: dispatch.dispatch(queued, context),
        event_id=queued.event.Id,
        category=queued.event.Category,
        source=queued.source,
    )


def start_plan(group: str, plan_id: str) -> dict[str, Any]:
    return _run(lambda context: redeploy.start_plan(group, plan_id, context), job="start_plan", plan=plan_id)


def advance_plan(plan_id: str, timer: str | None = None) -> dict[str, Any]:
    return _run(
        lambda context: plan_advance.advance_plan(plan_id, context, timer=timer), job="advance_plan", plan=plan_id
    )


def scheduled_promotion(orchestration: str, schedule: str, due: str) -> dict[str, Any]:
    return _run(
        lambda context: promotion_schedule.run_schedule(orchestration, schedule, due, context),
        job="scheduled_promotion",
        schedule=schedule,
    )


def promotion_step(space_id: str, deployment_id: str, interruption_id: str) -> dict[str, Any]:
    return _run(
        lambda context: promotion.promotion_step(space_id, deployment_id, interruption_id, context),
        job="promotion_step",
        interruption=interruption_id,
    )


def look_again_for_approval(space_id: str, interruption_id: str, timer: str = "") -> dict[str, Any]:
    return _run(
        lambda context: approval_relay.look_again(space_id, interruption_id, context, timer=timer or None),
        job="look_again_for_approval",
        interruption=interruption_id,
    )


def relay_pending_approvals(space_id: str, deployment_id: str, task_id: str = "") -> dict[str, Any]:
    return _run(
        lambda context: task_watcher.relay_pending(space_id, deployment_id, context, task_id=task_id),
        job="relay_pending_approvals",
        deployment=deployment_id,
    )


def deliver_notification(plan_id: str, destination: str) -> dict[str, Any]:
    job = get_current_job()
    last_attempt = job is None or not job.retries_left  # RQ counts a job's retries down as they are used
    return _run(
        lambda context: notify_delivery.deliver(plan_id, destination, context, last_attempt=last_attempt),
        job="deliver_notification",
        plan=plan_id,
        destination=destination,
    )


def cancel_stuck_deployment(task_id: str) -> dict[str, Any]:
    return _run(
        lambda context: stuck_deployments.cancel_stuck(task_id, context), job="cancel_stuck_deployment", task=task_id
    )


def _run(work: Callable[[WorkerContext], dict[str, Any]], **fields: str) -> dict[str, Any]:
    bound = log.bind(**fields)
    try:
        result = work(runtime.current())
    except PermanentError as error:
        _give_up_retrying()
        bound.error("job failed permanently", reason=str(error))
        raise
    except Exception as error:
        bound.warning("job failed, will retry if retries are left", error=repr(error))
        raise
    bound.info("job done")
    return result


def _give_up_retrying() -> None:
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
