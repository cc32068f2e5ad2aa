"""Catch up from Octopus's audit log what the webhooks did not bring.

Octopus does not retry a failed webhook, and one failed POST drops the rest of its batch. The
reconciler reads `/api/events` for the categories the conductor handles, from a cursor kept in Redis,
and feeds every event through the same deduplicated path as the intake: an event the webhook already
brought is a duplicate and changes nothing. The first run looks back a configured time. Each pass also
sweeps the redeploy plans (`workers.plan_sweep`): a running plan that lost its timer is moved on.

The cursor is a time: the newest `Occurred` read so far. Each pass asks `/api/events?from=` that time
less an overlap (`overlap`, CONDUCTOR_RECONCILE_OVERLAP_SECONDS), so that an event written a moment
before a newer one but visible only after it is still read; the dedupe record on `Event.Id` makes every
re-read free of effects. The number in `Events-<n>` is not an auto id: a server allocates event ids in
blocks per node, apart from the audit log's AutoId, so a cursor on it (`fromAutoId=n`) could skip events
for good.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
import structlog
from pydantic import ValidationError

from workers.event_queue import EventQueue, Submission
from workers.events import OctopusEvent, QueuedEvent, utcnow
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plan_sweep import sweep_plans
from workers.plans import PlanStore
from workers.redis_client import as_text
from workers.scheduling import JobScheduler

log = structlog.get_logger("conductor.reconciler")

BATCH = 200
DEFAULT_OVERLAP = timedelta(minutes=5)


@dataclass(frozen=True)
class ReconcileResult:
    read: int
    queued: int
    duplicates: int
    too_old: int
    cursor: datetime | None
    plans_woken: int = 0


def cursor_key(keys: RedisKeys) -> str:
    return f"{keys.prefix}:reconcile:cursor"


def read_cursor(connection: redis.Redis, keys: RedisKeys) -> datetime | None:
    """The newest `Occurred` read so far; None before the first pass (or where an older conductor kept an
    auto id there: the first pass's lookback then covers the change)."""
    stored = connection.get(cursor_key(keys))
    if stored is None:
        return None
    try:
        moment = datetime.fromisoformat(as_text(stored))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def reconcile_once(
    *,
    client: OctopusClient,
    queue: EventQueue,
    connection: redis.Redis,
    categories: Iterable[str],
    spaces: Sequence[str],
    lookback: timedelta,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> ReconcileResult:
    """Feed every event since the cursor less `overlap` (or within `lookback` on the first run) to the queue.

    An event older than the dedupe window is left alone: its dedupe record may be gone, so queueing it
    could do again what was done (after a quiet spell, or a reconciler stopped for longer than the window).
    """
    # First, and whatever Octopus answers below: a plan that lost its timer needs only Redis to move on.
    woken = sweep_plans(PlanStore(connection, queue.keys.prefix), JobScheduler(queue.queue, queue.policy, queue.keys))
    key = cursor_key(queue.keys)
    stored = read_cursor(connection, queue.keys)
    since = datetime.now(UTC) - lookback if stored is None else stored - overlap
    params: dict[str, str | int | bool | None] = {
        "eventCategories": ",".join(sorted(categories)),
        "spaces": ",".join(spaces) or None,
        "includeSystem": True,
        "excludeDifference": True,
        "from": since.isoformat(),
    }
    # The log is newest first, and a page read while events arrive repeats some: one of each, oldest first,
    # so the cursor only moves forward.
    by_id: dict[str, OctopusEvent] = {}
    for resource in client.items("/api/events", params):
        try:
            event = OctopusEvent.model_validate(resource)
        except ValidationError as error:
            log.warning("audit event skipped: not an event the conductor can read", error=str(error)[:200])
            continue
        by_id[event.Id] = event
    events = sorted(by_id.values(), key=lambda event: event.Occurred)
    oldest_safe = datetime.now(UTC) - timedelta(seconds=queue.dedupe_window_seconds) + _margin(queue)
    too_old = [event for event in events if event.Occurred < oldest_safe]
    unseen_too_old = [event for event in too_old if stored is None or event.Occurred > stored]
    if unseen_too_old:  # the overlap re-reads old events every pass; only news is worth a warning
        log.warning(
            "audit events older than the dedupe window left alone",
            count=len(unseen_too_old),
            last=unseen_too_old[-1].Id,
        )
    events = [event for event in events if event.Occurred >= oldest_safe]
    queued = duplicates = 0
    cursor = stored
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        received = utcnow()
        results = queue.store(
            [Submission(QueuedEvent(event=event, source="reconcile", received_at=received), True) for event in batch]
        )
        queued += sum(result.outcome == "queued" for result in results)
        duplicates += sum(result.outcome == "duplicate" for result in results)
        cursor = _later(cursor, batch[-1].Occurred)
        connection.set(key, cursor.isoformat())
    if too_old and not events:
        cursor = _later(cursor, too_old[-1].Occurred)
        connection.set(key, cursor.isoformat())
    if events:
        log.info("reconciled", read=len(events), queued=queued, duplicates=duplicates, cursor=cursor)
    return ReconcileResult(
        read=len(events) + len(too_old),
        queued=queued,
        duplicates=duplicates,
        too_old=len(too_old),
        cursor=cursor,
        plans_woken=len(woken),
    )


def _later(cursor: datetime | None, occurred: datetime) -> datetime:
    return occurred if cursor is None else max(cursor, occurred)


def _margin(queue: EventQueue) -> timedelta:
    """Stay clear of the window's edge by a tenth of it, at most an hour."""
    return min(timedelta(hours=1), timedelta(seconds=queue.dedupe_window_seconds / 10))
