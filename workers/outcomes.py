"""DeploymentSucceeded / DeploymentFailed: remember how each deployment ended.

Plans read these records to move on; a second delivery of the same event writes the same fields. Each
outcome, and its place in the index by time, is kept for the retention (`workers.retention`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from workers.errors import PermanentError
from workers.events import OctopusEvent, utcnow
from workers.redis_client import as_text
from workers.runtime import WorkerContext

RESULTS = {"DeploymentSucceeded": "Success", "DeploymentFailed": "Failed"}


def record_deployment_outcome(event: OctopusEvent, context: WorkerContext) -> dict[str, Any]:
    """Store the deployment's result, project, release, environment, tenant and task in Redis."""
    result = RESULTS.get(event.Category)
    if result is None:
        raise PermanentError(f"{event.Id}: {event.Category} is not a deployment outcome")
    deployment_id = event.related("Deployments-")
    if deployment_id is None:
        raise PermanentError(f"{event.Id}: RelatedDocumentIds names no Deployments- document")
    outcome = {
        "deployment": deployment_id,
        "project": event.related("Projects-") or "",
        "release": event.related("Releases-") or "",
        "environment": event.related("Environments-") or "",
        "tenant": event.related("Tenants-") or "",
        "task": event.related("ServerTasks-") or "",
        "space": event.SpaceId or "",
        "result": result,
        "occurred": event.Occurred.isoformat(),
        "event": event.Id,
    }
    store_deployment_outcome(context, outcome)
    return outcome


def store_deployment_outcome(context: WorkerContext, outcome: Mapping[str, str]) -> None:
    """Write an outcome (from the event, or from the task as the task watcher saw it end) and index it."""
    keys = context.keys
    deployment_id = outcome["deployment"]
    key = keys.deployment_outcome(deployment_id)
    now = utcnow()
    with context.redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=cast(Mapping[Any, Any], dict(outcome)))
        pipe.expire(key, context.retention.seconds)
        context.retention.index(pipe, keys.deployment_outcomes, deployment_id, at=now, now=now)
        pipe.execute()


def read_deployment_outcome(context: WorkerContext, deployment_id: str) -> dict[str, str] | None:
    raw = context.redis.hgetall(context.keys.deployment_outcome(deployment_id))
    if not raw:
        return None
    return {as_text(key): as_text(value) for key, value in raw.items()}
