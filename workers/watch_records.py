"""What the task watcher keeps in Redis, for itself, for the plans' timers and for whoever takes over from it.

- the watcher's lock and heartbeat: one watcher acts at a time; a plan's timer backs off while one is alive;
- each watched task as last seen (state, pending interruptions, when): a plan's timer reads it instead of
  asking Octopus again;
- hand-offs, once each: a finished task to its plan, a pending interruption to the relay;
- who watched each task (the watchers' names), so that "never two watchers" can be checked;
- the usual length of a successful deployment per project and environment, to pace the looks.

Every key expires: the short ones with the watcher's pace, the rest with the retention.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import redis

from workers.redis_client import as_text
from workers.retention import DEFAULT_RETENTION, Retention

WATCHER_LOCK = "task-watcher"
ALIVE_SECONDS = 10
SEEN_SECONDS = 120
HANDED_SECONDS = 3600
# A plan's timer trusts a sighting this recent instead of reading the task itself.
SIGHTING_FRESH_SECONDS = 60.0


class WatchRecords:
    def __init__(self, connection: redis.Redis, prefix: str, *, retention: Retention = DEFAULT_RETENTION) -> None:
        self._redis = connection
        self._prefix = prefix
        self._retention = retention

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, "watch", *parts))

    # --- the watcher itself -------------------------------------------------------------------------

    def beat(self, watcher: str) -> None:
        self._redis.set(self._key("alive"), watcher, ex=ALIVE_SECONDS)

    def alive(self) -> bool:
        """A watcher held the lock within the last few seconds: the plans' tasks are being watched."""
        return bool(self._redis.exists(self._key("alive")))

    # --- sightings ------------------------------------------------------------------------------------

    def saw(self, tasks: Sequence[Mapping[str, Any]], *, at: datetime) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            for task in tasks:
                sighting = {
                    "State": task.get("State"),
                    "IsCompleted": bool(task.get("IsCompleted")),
                    "HasPendingInterruptions": bool(task.get("HasPendingInterruptions")),
                    "ErrorMessage": task.get("ErrorMessage") or "",
                    "at": at.isoformat(),
                }
                pipe.set(self._key("seen", str(task["Id"])), json.dumps(sighting), ex=SEEN_SECONDS)
            pipe.execute()

    def sighting(self, task_id: str, *, now: datetime) -> dict[str, Any] | None:
        """The task as the watcher last saw it, if that was recent enough to stand for a look of one's own."""
        raw = self._redis.get(self._key("seen", task_id))
        if raw is None:
            return None
        found: dict[str, Any] = json.loads(raw)
        at = datetime.fromisoformat(found["at"])
        if (now - at).total_seconds() > SIGHTING_FRESH_SECONDS:
            return None
        found["at"] = at
        return found

    # --- hand-offs ----------------------------------------------------------------------------------

    def hand_over(self, what: str, task_id: str) -> bool:
        """True the first time `what` (finished, relay) is handed over for this task, within the hour."""
        return bool(self._redis.set(self._key(what, task_id), "1", nx=True, ex=HANDED_SECONDS))

    def handed_at(self, what: str, task_id: str) -> float | None:
        """Seconds since `what` was handed over for this task, if it was."""
        ttl = int(self._redis.ttl(self._key(what, task_id)))
        return None if ttl < 0 else float(HANDED_SECONDS - ttl)

    def take_back(self, what: str, task_id: str) -> None:
        """The hand-off no longer stands (the interruption was answered): a later one is handed over again."""
        self._redis.delete(self._key(what, task_id))

    # --- who watched --------------------------------------------------------------------------------

    def watched_by(self, task_ids: Sequence[str], watcher: str) -> None:
        with self._redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                key = self._key("watched-by", task_id)
                pipe.sadd(key, watcher)
                pipe.expire(key, self._retention.seconds)
            pipe.execute()

    def watchers_of(self, task_id: str) -> set[str]:
        return {as_text(item) for item in self._redis.smembers(self._key("watched-by", task_id))}

    # --- how long deployments usually run --------------------------------------------------------------

    def ran(self, project_id: str, environment_id: str, seconds: float) -> None:
        self._redis.set(self._key("usual", project_id, environment_id), f"{seconds:.3f}", ex=self._retention.seconds)

    def usual(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """The last successful run's length of each (project, environment) that has one."""
        if not pairs:
            return {}
        raws = self._redis.mget([self._key("usual", project, environment) for project, environment in pairs])
        return {pair: float(as_text(raw)) for pair, raw in zip(pairs, raws, strict=True) if raw is not None}
