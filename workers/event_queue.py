"""The one path by which an event becomes work: deduplicate on `Event.Id` and enqueue, atomically.

RQ deduplicates a reused job id only while the job's hash lives, and it cannot make "enqueue unless
seen" atomic. So a Lua script writes what RQ's own enqueue would write only if the event's dedupe key was
not set yet. One script call stores a whole batch of events in one round trip, which is how the intake
stays fast; the reconciler and `replay` use the same call. An event is either stored with its dedupe
record, or neither is.

Building an RQ `Job` per event and passing every argument of every RQ command to the script cost about a
third of the intake's CPU. Instead each `EventQueue` learns a template from RQ itself when it is built: it records
RQ's enqueue of two sample events into a pipeline that is never executed, keeps every argument that is
the same for both, and marks the ones that vary (job key, job id, `data`, `description`, timestamps) as
slots. The script receives the template once per call and only those values per event. Any variation the
template cannot explain, a `data` that does not decode to the call RQ's own does, or a job hash that RQ's
`Job.restore` cannot read back as that call, stops the learning with an error, so a change in RQ's job
format is detected rather than written wrongly. The learning needs no Redis, so `conductor serve` makes it
before it listens and refuses to start on an RQ whose format it cannot follow (`RQFormatChanged` names
the installed version); pyproject.toml pins RQ to the major version this was checked with.

With `replica_acks` set, a store is followed on the same connection by Redis's `WAIT`: the call succeeds
only once that many replicas hold the write, so a failover cannot lose an event that was acknowledged.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import redis
import rq
from rq import Queue, Retry
from rq.serializers import JSONSerializer
from rq.utils import now as rq_now
from rq.utils import utcformat, utcparse

from workers.event_json import queued_event_json
from workers.events import OctopusEvent, QueuedEvent
from workers.keys import RedisKeys

JOB_FUNCTION = "workers.jobs.handle_event"
# The RQ major version the template's learning was written against; pyproject.toml pins it.
CHECKED_RQ_MAJOR = 3
# RQ's enqueue asks the server's version, only to note it on the Job object; nothing it writes depends on it.
# Recording with a stated version lets the template be learnt, and checked, before Redis is reached.
RECORDED_SERVER_VERSION = (7, 0, 0)
# A job's data is the JSON of [function, instance, args, kwargs]; only the one argument varies.
_DATA_HEAD = b"[" + json.dumps(JOB_FUNCTION).encode() + b",null,["
_DATA_TAIL = b"],{}]"
RECENT_EVENTS_KEPT = 200

# Slots of the template: which per-call or per-event value replaces an argument. The numbers are indexes
# into the script's `values` table.
SLOT_NOW = 1
SLOT_JOB_KEY = 2
SLOT_JOB_ID = 3
SLOT_DATA = 4
SLOT_DESCRIPTION = 5
VALUES_PER_EVENT = 6  # dedupe key, recent entry, job key, job id, data, description

# The template is learnt at start-up and is the same for every call, so it is written into the script's text
# (`store_events_script`) rather than sent as arguments: with it as arguments, redis-py's packing of ~70 more
# arguments per call was the largest single cost of the intake's store.
# ARGV: dedupe ttl, recent-list length, timestamp (RQ's format), then one argument per event: the lengths of
#   its six values ("n,n,n,n,n,n;") followed by the values themselves: dedupe key ('' = no dedupe), recent
#   entry ('' = none), job key ('' = no job), job id, data, description. (One argument instead of six: each
#   argument is a copy of the growing buffer in redis-py's packing.)
# Every command of the template runs, with its slots filled, for each event whose dedupe key was new.
# Returns one flag per event: 1 stored (or recorded), 0 a duplicate of a stored event.
_STORE_EVENTS_BODY = """
local ttl = tonumber(ARGV[1])
local recent_max = tonumber(ARGV[2])
local recent_key = KEYS[1]
local values = {ARGV[3], '', '', '', ''}
local command_count = #commands
local stored = {}
for i = 4, #ARGV do
  local packed = ARGV[i]
  local a, b, c, d, e, f, at = string.match(packed, '^(%d+),(%d+),(%d+),(%d+),(%d+),(%d+);()')
  local lengths, fields = {tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(e), tonumber(f)}, {}
  for n = 1, 6 do
    fields[n] = string.sub(packed, at, at + lengths[n] - 1)
    at = at + lengths[n]
  end
  local dedupe_key, recent, job_key = fields[1], fields[2], fields[3]
  values[2], values[3], values[4], values[5] = job_key, fields[4], fields[5], fields[6]
  local fresh = 1
  if dedupe_key ~= '' and not redis.call('SET', dedupe_key, '1', 'NX', 'EX', ttl) then
    fresh = 0
  end
  if fresh == 1 and job_key ~= '' then
    for c = 1, command_count do
      local command, filled = commands[c], slots[c]
      for s = 1, #filled, 2 do
        command[filled[s]] = values[filled[s + 1]]
      end
      redis.call(unpack(command))
    end
  end
  if fresh == 1 and recent ~= '' then
    redis.call('LPUSH', recent_key, recent)
  end
  stored[#stored + 1] = fresh
end
redis.call('LTRIM', recent_key, 0, recent_max - 1)
return stored
"""


def store_events_script(template: _Template) -> str:
    """The store script with `template`'s commands (arguments, and the (position, slot) pairs to fill) as Lua
    tables: `commands[c]` the arguments of command c (a slot's position holds ''), `slots[c]` its pairs."""
    commands: list[str] = []
    slots: list[str] = []
    encoded, i = template.encoded, 0
    for _ in range(template.command_count):
        argc, slot_count = int(encoded[i]), int(encoded[i + 1])
        i += 2
        commands.append("{" + ", ".join(_lua_string(arg) for arg in encoded[i : i + argc]) + "}")
        i += argc
        slots.append("{" + ", ".join(str(int(n)) for n in encoded[i : i + 2 * slot_count]) + "}")
        i += 2 * slot_count
    head = f"local commands = {{{', '.join(commands)}}}\nlocal slots = {{{', '.join(slots)}}}\n"
    return head + _STORE_EVENTS_BODY


def _lua_string(value: bytes | int) -> str:
    """A Lua string literal of any bytes (decimal escapes for all but plain printable ASCII)."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    plain = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-.+/ ,{}[]()@#$%^&*=!?<>|~"
    return '"' + "".join(chr(byte) if byte in plain else f"\\{byte:03d}" for byte in raw) + '"'


def _packed(*values: bytes) -> bytes:
    """One event's six values as the script's one argument: their lengths, then the values."""
    return b"%d,%d,%d,%d,%d,%d;" % tuple(map(len, values)) + b"".join(values)


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


class RQFormatChanged(ValueError):
    """RQ's enqueue writes something the learnt template cannot reproduce: this module needs updating.

    A ValueError, as for any setting the conductor cannot run safely with: `serve` refuses to start."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"RQ {rq.__version__} writes jobs in a format the conductor cannot follow ({detail}); it was checked "
            f"with RQ {CHECKED_RQ_MAJOR}.x: install rq>={CHECKED_RQ_MAJOR}.0,<{CHECKED_RQ_MAJOR + 1}"
        )
        self.detail = detail


class NotReplicated(redis.RedisError):
    """Redis stored the write but fewer replicas than required confirmed it in time: it may be lost on failover."""

    def __init__(self, *, confirmed: int, required: int, timeout_ms: int) -> None:
        super().__init__(f"{confirmed} of {required} replica(s) confirmed the write within {timeout_ms} ms")
        self.confirmed = confirmed
        self.required = required


@dataclass(frozen=True)
class _Template:
    """RQ's enqueue of one job as script arguments: `[argc, slot count, args..., (position, slot)...]` per
    command, and the prefix that makes a job id its job key."""

    command_count: int
    encoded: list[bytes | int]
    job_key_prefix: str


class EventQueue:
    """Turns events into RQ jobs through the store script (`store_events_script`)."""

    def __init__(
        self,
        *,
        connection: redis.Redis,
        keys: RedisKeys,
        policy: JobPolicy,
        dedupe_window_seconds: int,
        replica_acks: int = 0,
        replica_timeout_ms: int = 500,
    ) -> None:
        """Learns RQ's job format at once, without Redis; raises RQFormatChanged if it cannot."""
        self.keys = keys
        self.policy = policy
        self.dedupe_window_seconds = dedupe_window_seconds
        self.replica_acks = replica_acks
        self.replica_timeout_ms = replica_timeout_ms
        self._connection = connection
        self._encoder = connection.connection_pool.get_encoder()
        self.queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
        self._template = self._learn_template()
        self.script_text = store_events_script(self._template)
        self._script = connection.register_script(self.script_text)

    def wait_args(self) -> tuple[str, int, int]:
        """The WAIT that follows a store when replica acks are required."""
        return ("WAIT", self.replica_acks, self.replica_timeout_ms)

    def check_replicated(self, confirmed: int) -> None:
        """Raise NotReplicated when WAIT confirmed fewer replicas than required."""
        if confirmed < self.replica_acks:
            raise NotReplicated(confirmed=confirmed, required=self.replica_acks, timeout_ms=self.replica_timeout_ms)

    def prepare(self, submissions: Sequence[Submission]) -> ScriptCall:
        """Build the script call that stores `submissions` (no I/O once the version is known)."""
        call = ScriptCall(keys=[self.keys.recent_events])
        args = call.args
        args += [self.dedupe_window_seconds, RECENT_EVENTS_KEPT, utcformat(rq_now())]
        job_key_prefix = self._template.job_key_prefix
        for submission in submissions:
            event = submission.event.event
            if submission.handled:
                job_id = self.keys.job_id(event.Id)
                args.append(
                    _packed(
                        self.keys.dedupe(event.Id).encode(),
                        _recent_entry(submission, "queued"),
                        (job_key_prefix + job_id).encode(),
                        job_id.encode(),
                        self.job_data(submission.event),
                        _description(submission.event).encode(),
                    )
                )
            else:
                args.append(_packed(b"", _recent_entry(submission, "ignored"), b"", b"", b"", b""))
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
        """Store synchronously (reconciler, replay, tests); the intake uses `prepare` + async I/O.

        Raises NotReplicated when replica acks are required and fewer replicas confirmed the write."""
        if not submissions:
            return []
        call = self.prepare(submissions)
        if not self.replica_acks:
            flags = self._script(keys=call.keys, args=call.args)
            return self.results(submissions, flags)
        # WAIT counts the writes of its own connection: the script and WAIT go down one pipeline.
        with self._connection.pipeline(transaction=False) as pipeline:
            self._script(keys=call.keys, args=call.args, client=pipeline)
            pipeline.execute_command(*self.wait_args())  # type: ignore[no-untyped-call]
            flags, confirmed = pipeline.execute()
        self.check_replicated(int(confirmed))
        return self.results(submissions, flags)

    @staticmethod
    def job_data(event: QueuedEvent) -> bytes:
        """The job's `data` field: the JSON of (function, instance, args, kwargs), as RQ reads it.

        RQ compresses `data` with zlib and reads it back plain as well (`Job.restore`); the template's
        learning checks that it still does. Leaving it plain costs about 0.6 KB of Redis memory per kept
        job (1.6 KB instead of 1.0 KB for a typical event) and saves about 15 % of the intake's CPU per
        event (`bench/README.md`). The event's JSON is what pydantic's serializer writes, written by orjson
        (`workers.event_json`) at a third of pydantic's cost and a ninth of RQ's `json.dumps` of its dict."""
        return _DATA_HEAD + queued_event_json(event) + _DATA_TAIL

    def template(self) -> _Template:
        """The template learnt from RQ when the queue was built."""
        return self._template

    def _learn_template(self) -> _Template:
        first, second = _sample_event("Events-1", "SampleOne"), _sample_event("Events-22", "SampleTwo")
        before = rq_now()
        recorded = self._enqueue_commands(first)
        after = rq_now()
        first_values = self._slot_values(first)
        by_value = {value: slot for slot, value in first_values.items()}
        if len(by_value) != len(first_values):
            raise RQFormatChanged("the sample event's slot values are not distinct")
        first_call = _job_call(first_values[SLOT_DATA])
        encoded: list[bytes | int] = []
        shapes: list[list[int | None]] = []  # per command, the slot of each argument (None: constant)
        found: set[int] = set()
        for command in recorded:
            shape: list[int | None] = []
            for argument in command:
                slot = by_value.get(argument)
                if slot is None and _job_call(argument) == first_call:
                    slot = SLOT_DATA
                if slot is None and _is_timestamp_between(argument, before, after):
                    slot = SLOT_NOW
                shape.append(slot)
                if slot is not None:
                    found.add(slot)
            filled = [(position, slot) for position, slot in enumerate(shape, 1) if slot is not None]
            encoded += [len(command), len(filled)]
            encoded += [b"" if slot is not None else argument for argument, slot in zip(command, shape, strict=True)]
            for position, slot in filled:
                encoded += [position, slot]
            shapes.append(shape)
        missing = {SLOT_JOB_KEY, SLOT_JOB_ID, SLOT_DATA, SLOT_DESCRIPTION} - found
        if missing:
            raise RQFormatChanged(f"RQ's enqueue no longer writes the slots {sorted(missing)} as expected")
        job_key = first_values[SLOT_JOB_KEY].decode()
        job_id = first_values[SLOT_JOB_ID].decode()
        if not job_key.endswith(job_id):
            raise RQFormatChanged(f"job key {job_key!r} does not end with its job id {job_id!r}")
        # A second, different event must come out of the template exactly as RQ writes it: anything else
        # that varies per event (or a data format the template does not make) shows up here.
        second_recorded = self._enqueue_commands(second)
        second_values = self._slot_values(second)
        rendered = [
            [
                argument if slot is None else second_values.get(slot)
                for argument, slot in zip(command, shape, strict=True)
            ]
            for command, shape in zip(recorded, shapes, strict=True)
        ]
        if len(second_recorded) != len(recorded) or [len(c) for c in second_recorded] != [len(c) for c in recorded]:
            raise RQFormatChanged("RQ's enqueue commands differ in shape between two events")
        # Data is compared by what it decodes to: ours is plain compact JSON, RQ's is compressed, with spaces.
        ours = [
            [_comparable(slot, argument) for argument, slot in zip(command, shape, strict=True)]
            for command, shape in zip(rendered, shapes, strict=True)
        ]
        theirs = [
            [
                None if slot == SLOT_NOW else _comparable(slot, argument)
                for argument, slot in zip(command, shape, strict=True)
            ]
            for command, shape in zip(second_recorded, shapes, strict=True)
        ]
        if ours != theirs:
            raise RQFormatChanged("RQ's enqueue writes per-event values the template does not explain")
        self._check_rq_reads_back(rendered, second)
        return _Template(
            command_count=len(recorded), encoded=encoded, job_key_prefix=job_key[: len(job_key) - len(job_id)]
        )

    def _check_rq_reads_back(self, rendered: list[list[bytes | None]], event: QueuedEvent) -> None:
        """RQ's own `Job.restore` must read the job hash the template writes as the call it stands for."""
        job_id = self.keys.job_id(event.event.Id)
        job_key = self._encoder.encode(self.queue.job_class.key_for(job_id))  # type: ignore[no-untyped-call]
        fields: dict[bytes, bytes] = {}
        for command in rendered:
            if command[0] == b"HSET" and command[1] == job_key:
                fields.update(
                    (name, value)
                    for name, value in zip(command[2::2], command[3::2], strict=True)
                    if name and value is not None
                )
        job = self.queue.job_class(job_id, connection=self._connection, serializer=JSONSerializer)
        try:
            job.restore(fields)
            read_back = (job.func_name, job.args, job.kwargs)
        except Exception as error:  # any failure to read is the format change this check exists for
            raise RQFormatChanged(f"RQ cannot read the job the template writes: {error}") from error
        if read_back != (JOB_FUNCTION, [event.job_argument()], {}):
            raise RQFormatChanged("RQ reads the job the template writes as a different call")

    def _slot_values(self, event: QueuedEvent) -> dict[int, bytes]:
        """The per-event slots as the encoder sends them (all but the timestamp, which is per call)."""
        job_id = self.keys.job_id(event.event.Id)
        encode = self._encoder.encode
        return {
            SLOT_JOB_KEY: encode(self.queue.job_class.key_for(job_id)),  # type: ignore[no-untyped-call]
            SLOT_JOB_ID: encode(job_id),  # type: ignore[no-untyped-call]
            SLOT_DATA: self.job_data(event),
            SLOT_DESCRIPTION: encode(_description(event)),  # type: ignore[no-untyped-call]
        }

    def _enqueue_commands(self, event: QueuedEvent) -> list[list[bytes]]:
        """The commands RQ's own `enqueue_many` sends for `event`, recorded and not executed."""
        recording = Queue(self.keys.queue_name, connection=self._connection, serializer=JSONSerializer)
        recording.redis_server_version = RECORDED_SERVER_VERSION
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
            description=_description(event),
        )
        recording.enqueue_many([data], pipeline=recorder)
        encode = self._encoder.encode
        commands: list[list[bytes]] = [
            [encode(arg) for arg in args]  # type: ignore[no-untyped-call]
            for args, _options in recorder.command_stack
        ]
        recorder.reset()
        return commands


def _description(event: QueuedEvent) -> str:
    return f"{event.event.Category} {event.event.Id}"


def _sample_event(event_id: str, category: str) -> QueuedEvent:
    occurred = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    return QueuedEvent(
        event=OctopusEvent(
            Id=event_id, Category=category, RelatedDocumentIds=[f"Deployments-{event_id}"], Occurred=occurred
        ),
        source="webhook",
        received_at=occurred,
    )


def _job_call(data: bytes) -> Any:
    """What a job's `data` decodes to (RQ reads compressed and plain data alike), or None."""
    with contextlib.suppress(zlib.error):
        data = zlib.decompress(data)
    try:
        return json.loads(data)
    except ValueError:
        return None


def _comparable(slot: int | None, value: bytes | None) -> Any:
    """An argument as the template's check compares it: `data` by what it decodes to."""
    return _job_call(value) if slot == SLOT_DATA and value is not None else value


def _is_timestamp_between(argument: bytes, before: datetime, after: datetime) -> bool:
    """True for a timestamp in RQ's format taken while the sample was recorded."""
    if len(argument) > 40:
        return False
    try:
        moment = utcparse(argument.decode())
    except (UnicodeDecodeError, ValueError):
        return False
    return before - timedelta(seconds=1) <= moment <= after + timedelta(seconds=1)


def _recent_entry(submission: Submission, outcome: Outcome) -> bytes:
    event = submission.event.event
    entry: dict[str, Any] = {
        "id": event.Id,
        "category": event.Category,
        "outcome": outcome,
        "source": submission.event.source,
        "received_at": submission.event.received_at.astimezone(UTC),  # as isoformat() writes it
        "related": event.RelatedDocumentIds[:8],
    }
    return orjson.dumps(entry)
