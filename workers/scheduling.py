"""Follow-up jobs a handler asks for: start a plan after its gathering window, look at a task later, run a
scheduled promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue, Retry

from workers.event_queue import JobPolicy
from workers.keys import RedisKeys


class JobScheduler:
    def __init__(self, queue: Queue, policy: JobPolicy, keys: RedisKeys) -> None:
        self._queue = queue
        self._policy = policy
        self._keys = keys

    def soon(self, function: str, *args: str, delay: float = 0.0) -> None:
        """Run `function(*args)` as a job after `delay` seconds (at once when 0)."""
        if delay <= 0:
            self._queue.enqueue(function, **self._options(args))
        else:
            due = not_before(datetime.now(UTC) + timedelta(seconds=delay))
            self._queue.enqueue_at(due, function, **self._options(args))

    def _options(self, args: tuple[str, ...]) -> dict[str, object]:
        return {
            "args": args,
            "job_id": self._keys.follow_up_job_id(),
            "job_timeout": self._policy.timeout_seconds,
            "result_ttl": self._policy.result_ttl_seconds,
            "failure_ttl": self._policy.failure_ttl_seconds,
            "retry": Retry(max=len(self._policy.retry_intervals), interval=list(self._policy.retry_intervals))
            if self._policy.retry_intervals
            else None,
        }


def not_before(due: datetime) -> datetime:
    """RQ keeps a due time in whole seconds, dropping the fraction: round up, so that a job never runs early
    (a gathering window never closes before its time)."""
    whole = due.replace(microsecond=0)
    return whole if whole == due else whole + timedelta(seconds=1)
