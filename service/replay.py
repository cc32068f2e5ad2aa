"""`conductor replay`: put failed jobs back on the queue, once the cause has been fixed.

Only jobs in RQ's failed registry are requeued: a queued, running or finished job is left alone, so a
replay never runs an event twice at the same time. Handlers are idempotent, so a replayed event whose
effect partly happened finishes the rest and repeats nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from workers.keys import RedisKeys


@dataclass
class ReplayOutcome:
    lines: list[str] = field(default_factory=list)
    ok: bool = True


def replay_failed(connection: redis.Redis, keys: RedisKeys, *, event_ids: list[str] | None) -> ReplayOutcome:
    """Requeue the failed jobs of `event_ids`, or every failed job when None."""
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    registry = FailedJobRegistry(queue=queue)
    failed = set(registry.get_job_ids())
    wanted = sorted(failed) if event_ids is None else [keys.job_id(event_id) for event_id in event_ids]
    outcome = ReplayOutcome()
    if not wanted:
        outcome.lines.append("no failed jobs")
    for job_id in wanted:
        if job_id not in failed:
            outcome.ok = False
            outcome.lines.append(f"{job_id}: not in the failed registry ({_state(connection, job_id)}); left alone")
            continue
        registry.requeue(job_id)
        outcome.lines.append(f"{job_id}: requeued")
    return outcome


def _state(connection: redis.Redis, job_id: str) -> str:
    try:
        status = Job.fetch(job_id, connection=connection, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        return "no such job: never queued, or expired"
    return f"it is {status}"
