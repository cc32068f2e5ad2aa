"""What each schedule's fire times became, for `conductor status`: queued (with the promotion it made) or missed.

`workers.promotion_schedule` decides each fire time once; this keeps a time index of those decisions, newest
fire time first, and the plan each queued run made. Both are kept for the retention (`workers.retention`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis

from workers.events import utcnow
from workers.redis_client import as_text
from workers.retention import DEFAULT_RETENTION, Retention


class ScheduleRuns:
    def __init__(self, connection: redis.Redis, prefix: str, *, retention: Retention = DEFAULT_RETENTION) -> None:
        self._redis = connection
        self._prefix = prefix
        self._retention = retention

    @property
    def _index(self) -> str:
        return f"{self._prefix}:schedule-runs"

    def _plan_key(self, orchestration: str, schedule: str, due: str) -> str:
        return f"{self._prefix}:schedule-run-plan:{orchestration}:{schedule}:{due}"

    def record(
        self, orchestration: str, schedule: str, due: datetime, outcome: str, *, late_seconds: float, grace_seconds: int
    ) -> None:
        """One fire time's outcome (recorded once, by the scheduler that decided it)."""
        entry = {
            "orchestration": orchestration,
            "schedule": schedule,
            "due": due.isoformat(),
            "outcome": outcome,
            "late_seconds": round(late_seconds),
            "grace_seconds": grace_seconds,
        }
        with self._redis.pipeline(transaction=True) as pipe:
            self._retention.index(pipe, self._index, json.dumps(entry, sort_keys=True), at=due, now=utcnow())
            pipe.execute()

    def planned(self, orchestration: str, schedule: str, due: str, plan_id: str) -> None:
        """The promotion a queued run made."""
        self._redis.set(self._plan_key(orchestration, schedule, due), plan_id, ex=self._retention.seconds)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest fire times first, each with the plan it made (None for a missed one or one not yet run)."""
        found = self._redis.zrevrange(self._index, 0, limit - 1)
        entries: list[dict[str, Any]] = [json.loads(as_text(raw)) for raw in found]  # type: ignore[arg-type]
        if not entries:
            return []
        keys = [self._plan_key(entry["orchestration"], entry["schedule"], entry["due"]) for entry in entries]
        for entry, plan_id in zip(entries, self._redis.mget(keys), strict=True):
            entry["plan"] = None if plan_id is None else as_text(plan_id)
        return entries
