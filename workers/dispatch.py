"""From a queued event to the handler registered for its category.

`handle_event` is the RQ job function: it only translates the job's JSON argument, finds the handler
and calls it. A `PermanentError` ends the job in RQ's failed registry at once, with its message as the
reason; anything else is retried with the job's backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from rq import get_current_job

from workers import outcomes, runtime
from workers.errors import PermanentError, UnhandledCategory
from workers.events import OctopusEvent, QueuedEvent
from workers.runtime import WorkerContext

Handler = Callable[[OctopusEvent, WorkerContext], dict[str, Any]]

HANDLERS: Mapping[str, Handler] = {
    "DeploymentSucceeded": outcomes.record_deployment_outcome,
    "DeploymentFailed": outcomes.record_deployment_outcome,
}

log = structlog.get_logger("conductor.worker")


def handled_categories() -> frozenset[str]:
    return frozenset(HANDLERS)


def dispatch(queued: QueuedEvent, context: WorkerContext) -> dict[str, Any]:
    """Run the handler for the event's category."""
    event = queued.event
    handler = HANDLERS.get(event.Category)
    if handler is None:
        raise UnhandledCategory(event.Category)
    return handler(event, context)


def handle_event(job_argument: dict[str, Any]) -> dict[str, Any]:
    """RQ job entry point."""
    queued = QueuedEvent.model_validate(job_argument)
    bound = log.bind(event_id=queued.event.Id, category=queued.event.Category, source=queued.source)
    try:
        result = dispatch(queued, runtime.current())
    except PermanentError as error:
        _give_up_retrying()
        bound.error("event failed permanently", reason=str(error))
        raise
    except Exception as error:
        bound.warning("event failed, will retry if retries are left", error=repr(error))
        raise
    bound.info("event handled")
    return result


def _give_up_retrying() -> None:
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
