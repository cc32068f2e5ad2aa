"""How long the conductor keeps what it records in Redis, so that a year of a busy Octopus stays bounded.

Every record is kept `seconds` (CONDUCTOR_RETENTION_SECONDS, 30 days by default) after it last changed
once it has ended; a record still in progress (a running plan, an approval still looked for) is kept while
it runs. Every index (a sorted set of ids by time) is trimmed by age whenever it is written, and expires as
a whole when nothing wrote it for `seconds`. Each store states what it keeps beside its keys; this module
holds the one rule they apply.

Kept apart, with settings of their own: the dedupe records of the intake (CONDUCTOR_DEDUPE_WINDOW_SECONDS),
RQ's job results and failed jobs (`workers.event_queue.JobPolicy`), and the bounded list of recent events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.client import Pipeline

DEFAULT_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Retention:
    seconds: int = DEFAULT_SECONDS

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ValueError("a retention must be at least one second")

    def keep(
        self, pipe: Pipeline, key: str, value: str | bytes, *, ended: bool, longest_in_progress: int | None = None
    ) -> None:
        """Write a record: kept `seconds` once it has ended; while in progress, kept as long as it runs, or, for
        a kind of record that cannot be in progress longer than `longest_in_progress`, that long and then
        `seconds` more (so that one whose worker died mid-way is not kept forever)."""
        if ended:
            pipe.set(key, value, ex=self.seconds)
        elif longest_in_progress is not None:
            pipe.set(key, value, ex=longest_in_progress + self.seconds)
        else:
            pipe.set(key, value)

    def index(self, pipe: Pipeline, key: str, member: str, *, at: datetime, now: datetime) -> None:
        """Add `member` to a time index, drop what is older than the retention, and let the index expire
        should nothing write it again for that long."""
        pipe.zadd(key, {member: at.timestamp()})
        pipe.zremrangebyscore(key, "-inf", f"({now.timestamp() - self.seconds}")
        pipe.expire(key, self.seconds)


DEFAULT_RETENTION = Retention()
