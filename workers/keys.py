"""Names of everything the conductor keeps in Redis, under one prefix.

One prefix per installation (and per test) keeps the conductor's keys, its RQ queue and its job ids
apart from anything else in the same Redis.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import redis

_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "conductor"

    def __post_init__(self) -> None:
        if not _PREFIX_PATTERN.fullmatch(self.prefix):
            raise ValueError(
                f"Redis prefix {self.prefix!r} must be 1-40 letters, digits, '_' or '-' "
                "(it is also the RQ queue name and the start of every job id)"
            )

    @property
    def queue_name(self) -> str:
        """The RQ queue that carries events to workers."""
        return self.prefix

    def job_id(self, event_id: str) -> str:
        """One job per Octopus event; RQ allows letters, digits, '_' and '-' in ids."""
        return f"{self.prefix}-{event_id}"

    def follow_up_job_id(self) -> str:
        """A job a handler schedules (start a plan, look again): unique, and under the prefix like every key."""
        return f"{self.prefix}-follow-up-{uuid.uuid4().hex}"

    def dedupe(self, event_id: str) -> str:
        return f"{self.prefix}:seen:{event_id}"

    @property
    def recent_events(self) -> str:
        return f"{self.prefix}:recent-events"

    def deployment_outcome(self, deployment_id: str) -> str:
        return f"{self.prefix}:deployment:{deployment_id}"

    @property
    def deployment_outcomes(self) -> str:
        """Sorted set of deployment ids by the time their outcome was recorded."""
        return f"{self.prefix}:deployments"


def delete_all(connection: redis.Redis, keys: RedisKeys) -> None:
    """Remove everything one prefix produced: the conductor's keys and the RQ keys named after its queue
    and job ids. Nothing else is touched."""
    for pattern in (f"{keys.prefix}:*", f"rq:*{keys.prefix}*"):
        found = list(connection.scan_iter(match=pattern, count=1000))
        if found:
            connection.delete(*found)
    connection.srem("rq:queues", f"rq:queue:{keys.queue_name}")
    for worker in connection.smembers("rq:workers"):
        name = worker.decode() if isinstance(worker, bytes) else str(worker)
        if keys.prefix in name:
            connection.srem("rq:workers", worker)
