"""The one path by which an event becomes work: deduplicate on `Event.Id` and enqueue, atomically.

RQ deduplicates a reused job id only while the job's hash lives, and it cannot make "enqueue unless
seen" atomic. So RQ builds the commands of a normal enqueue into a pipeline that is never executed, and
a Lua script runs them only if the event's dedupe key was not set yet. One script call stores a whole
batch of events in one round trip, which is how the intake stays fast; the reconciler and `replay` use
the same call. An event is either stored with its dedupe record, or neither is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from workers.events import QueuedEvent
from workers.keys import RedisKeys

JOB_FUNCTION = "workers.jobs.handle_event"
RECENT_EVENTS_KEPT = 200

# ARGV: dedupe ttl, recent-list length, then per event:
#   dedupe key ('' = no dedupe), recent entry ('' = none), command count, then per command:
#   argument count, arguments...
# Returns one flag per event: 1 stored (or recorded), 0 a duplicate of a stored event.
STORE_EVENTS_SCRIPT = """
local ttl = tonumber(ARGV[1])
local recent_max = tonumber(ARGV[2])
local recent_key = KEYS[1]
local i = 3
local stored = {}
while i <= #ARGV do
  local dedupe_key, recent, command_count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local fresh = 1
  if dedupe_key ~= '' and not redis.call('SET', dedupe_key, '1', 'NX', 'EX', ttl) then
    fresh = 0
  end
  for _ = 1, command_count do
    local argc = tonumber(ARGV[i])
    if fresh == 1 then
      redis.call(unpack(ARGV, i + 1, i + argc))
    end
    i = i + 1 + argc
  end
  if fresh == 1 and recent ~= '' then
    redis.call('LPUSH', recent_key, recent)
  end
  stored[#stored + 1] = fresh
end
redis.call('LTRIM', recent_key, 0, recent_max - 1)
return stored
"""

Outcome = Literal["queued", "duplicate", "ignored"]


@dataclass(frozen=True)
class JobPolicy:
    """How long jobs may run, how they are retried and how long RQ keeps them."""

    timeout_seconds: int = 30
    retry_intervals: tuple[int, ...] = (5, 30, 120, 600)
    result_ttl_seconds: int = 24 * 3600
    failure_ttl_seconds: int = 14 * 24 * 3600


@dataclass(frozen=True)
class Submission:
    """One event offered to the queue. `handled` is False for categories no handler wants."""

    event: QueuedEvent
    handled: bool


@dataclass(frozen=True)
class StoreResult:
    outcome: Outcome
    job_id: str | None


@dataclass
class ScriptCall:
    keys: list[str]
    args: list[bytes | str | int] = field(default_factory=list)


class EventQueue:
    """Turns events into RQ jobs through `STORE_EVENTS_SCRIPT`."""

    def __init__(
        self,
        *,
        connection: redis.Redis,
        keys: RedisKeys,
        policy: JobPolicy,
        dedupe_window_seconds: int,
    ) -> None:
        self.keys = keys
        self.policy = policy
        self.dedupe_window_seconds = dedupe_window_seconds
        self._connection = connection
        self._encoder = connection.connection_pool.get_encoder()
        self.queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
        self._script = connection.register_script(STORE_EVENTS_SCRIPT)

    @property
    def knows_server_version(self) -> bool:
        return self.queue.redis_server_version is not None

    def learn_server_version(self) -> None:
        """RQ asks the server's version while it builds an enqueue. Asking once, up front (from a thread
        when the caller is an event loop), keeps every later build free of I/O."""
        self.queue.get_redis_server_version()

    def prepare(self, submissions: Sequence[Submission]) -> ScriptCall:
        """Build the script call that stores `submissions` (no I/O once the version is known)."""
        call = ScriptCall(keys=[self.keys.recent_events])
        call.args += [self.dedupe_window_seconds, RECENT_EVENTS_KEPT]
        for submission in submissions:
            event = submission.event.event
            if submission.handled:
                commands = self._enqueue_commands(submission.event)
                call.args += [self.keys.dedupe(event.Id), _recent_entry(submission, "queued")]
            else:
                commands = []
                call.args += ["", _recent_entry(submission, "ignored")]
            call.args.append(len(commands))
            for command in commands:
                call.args.append(len(command))
                call.args += command
        return call

    def results(self, submissions: Sequence[Submission], flags: Sequence[int]) -> list[StoreResult]:
        """Read the script's answer back into one result per submission."""
        out: list[StoreResult] = []
        for submission, flag in zip(submissions, flags, strict=True):
            if not submission.handled:
                out.append(StoreResult("ignored", None))
                continue
            job_id = self.keys.job_id(submission.event.event.Id)
            out.append(StoreResult("queued" if flag else "duplicate", job_id))
        return out

    def store(self, submissions: Sequence[Submission]) -> list[StoreResult]:
        """Store synchronously (reconciler, replay, tests); the intake uses `prepare` + async I/O."""
        if not submissions:
            return []
        call = self.prepare(submissions)
        flags = self._script(keys=call.keys, args=call.args)
        return self.results(submissions, flags)

    def _enqueue_commands(self, event: QueuedEvent) -> list[list[bytes]]:
        recorder = self._connection.pipeline(transaction=False)
        retry = (
            Retry(max=len(self.policy.retry_intervals), interval=list(self.policy.retry_intervals))
            if self.policy.retry_intervals
            else None
        )
        data = Queue.prepare_data(
            JOB_FUNCTION,
            args=(event.job_argument(),),
            job_id=self.keys.job_id(event.event.Id),
            timeout=self.policy.timeout_seconds,
            result_ttl=self.policy.result_ttl_seconds,
            failure_ttl=self.policy.failure_ttl_seconds,
            retry=retry,
            description=f"{event.event.Category} {event.event.Id}",
        )
        self.queue.enqueue_many([data], pipeline=recorder)
        encode = self._encoder.encode
        commands: list[list[bytes]] = [
            [encode(arg) for arg in args]  # type: ignore[no-untyped-call]
            for args, _options in recorder.command_stack
        ]
        recorder.reset()
        return commands


def _recent_entry(submission: Submission, outcome: Outcome) -> str:
    event = submission.event.event
    entry: dict[str, Any] = {
        "id": event.Id,
        "category": event.Category,
        "outcome": outcome,
        "source": submission.event.source,
        "received_at": submission.event.received_at.astimezone(UTC).isoformat(),
        "related": event.RelatedDocumentIds[:8],
    }
    return json.dumps(entry, separators=(",", ":"))
