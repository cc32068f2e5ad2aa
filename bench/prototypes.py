"""Prototypes of proposed intake changes, applied by monkeypatching, to measure their gain before they are made.

NOT product code and not used by the product: `bench.intake_variants` starts intake processes with these
patches so that a proposed change and the code as it is run side by side in one benchmark. Each patch
fails loudly if the product code it replaces has changed shape.

- `lean_store`: the job hash of an RQ job is built from a template learnt once from RQ itself (the fields
  that never change between events: status, timeout, TTLs, retries, origin, empty callbacks), and the store
  script receives those constant fields once per batch and only seven values per event (dedupe key,
  recent-events entry, job key, job id, timestamp, data, description) instead of every argument of every
  command RQ would send (about 57 per event). Data is RQ's JSON serializer format, zlib-compressed as RQ
  does it (`raw_data=True`: not compressed; RQ's `Job.data` reads both).
- `no_store`: the writer answers "queued" without touching Redis: the ceiling of everything but the store.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from service import event_writer
from workers import event_queue
from workers.event_queue import EventQueue, ScriptCall, StoreResult, Submission
from workers.events import QueuedEvent

LEAN_STORE_SCRIPT = """
local ttl = tonumber(ARGV[1])
local recent_max = tonumber(ARGV[2])
local queue_key, queues, constant_count = ARGV[3], ARGV[4], tonumber(ARGV[5])
local recent_key = KEYS[1]
local constant = {}
for j = 1, constant_count do
  constant[j] = ARGV[5 + j]
end
local i = 6 + constant_count
local stored = {}
local queued = false
while i <= #ARGV do
  local dedupe_key, recent, job_key, job_id, now, data, description =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  i = i + 7
  local fresh = 1
  if dedupe_key ~= '' and not redis.call('SET', dedupe_key, '1', 'NX', 'EX', ttl) then
    fresh = 0
  end
  if fresh == 1 and job_key ~= '' then
    redis.call('HSET', job_key, 'created_at', now, 'enqueued_at', now, 'data', data,
      'description', description, unpack(constant))
    redis.call('RPUSH', queue_key, job_id)
    queued = true
  end
  if fresh == 1 and recent ~= '' then
    redis.call('LPUSH', recent_key, recent)
  end
  stored[#stored + 1] = fresh
end
if queued then
  redis.call('SADD', queues, queue_key)
end
redis.call('LTRIM', recent_key, 0, recent_max - 1)
return stored
"""

PER_EVENT_FIELDS = frozenset({b"created_at", b"enqueued_at", b"data", b"description"})


def _learn_template(queue: EventQueue, sample: QueuedEvent) -> list[bytes | int]:
    """[queue key, rq:queues, n, constant field/value pairs...] from the commands RQ builds for one job."""
    commands: list[list[bytes]] = queue._enqueue_commands(sample)
    names = [command[0] for command in commands]
    if names != [b"SADD", b"HSET", b"HSET", b"RPUSH"]:
        raise RuntimeError(f"RQ's enqueue commands changed shape: {names}; the lean_store prototype needs updating")
    sadd, _status, full, rpush = commands
    constant: list[bytes] = []
    for index in range(2, len(full), 2):
        if full[index] not in PER_EVENT_FIELDS:
            constant += [full[index], full[index + 1]]
    return [rpush[1], sadd[1], len(constant), *constant]


def apply_lean_store(*, compress: bool = True) -> None:
    if not hasattr(EventQueue, "_enqueue_commands") or not hasattr(event_writer, "STORE_EVENTS_SCRIPT"):
        raise RuntimeError("the product's EventQueue/EventWriter changed; the lean_store prototype needs updating")
    recent_entry = event_queue._recent_entry
    templates: dict[int, list[bytes | int]] = {}
    head = b'["' + event_queue.JOB_FUNCTION.encode() + b'",null,['

    def prepare(self: EventQueue, submissions: Sequence[Submission]) -> ScriptCall:
        call = ScriptCall(keys=[self.keys.recent_events])
        args = call.args
        args += [self.dedupe_window_seconds, event_queue.RECENT_EVENTS_KEPT]
        handled = [submission for submission in submissions if submission.handled]
        if handled:
            template = templates.get(id(self))
            if template is None:
                template = templates[id(self)] = _learn_template(self, handled[0].event)
            args += template
        else:
            args += [b"", b"", 0]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for submission in submissions:
            event = submission.event.event
            if not submission.handled:
                args += ["", recent_entry(submission, "ignored"), "", "", "", "", ""]
                continue
            job_id = self.keys.job_id(event.Id)
            raw = head + submission.event.model_dump_json().encode() + b"],{}]"
            data = zlib.compress(raw) if compress else raw
            args += [
                self.keys.dedupe(event.Id),
                recent_entry(submission, "queued"),
                f"rq:job:{job_id}",
                job_id,
                now,
                data,
                f"{event.Category} {event.Id}",
            ]
        return call

    event_queue.STORE_EVENTS_SCRIPT = LEAN_STORE_SCRIPT
    event_writer.STORE_EVENTS_SCRIPT = LEAN_STORE_SCRIPT
    EventQueue.prepare = prepare  # type: ignore[method-assign]


def apply_no_store() -> None:
    async def write(self: Any, submission: Submission) -> StoreResult:
        return StoreResult("queued", self._queue.keys.job_id(submission.event.event.Id))

    event_writer.EventWriter.write = write  # type: ignore[method-assign]


PATCHES = {
    "lean": lambda: apply_lean_store(compress=True),
    "lean-raw": lambda: apply_lean_store(compress=False),
    "no-store": apply_no_store,
}
