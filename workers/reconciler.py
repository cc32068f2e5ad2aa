"""Catch up from Octopus's audit log what the webhooks did not bring.

Octopus does not retry a failed webhook, and one failed POST drops the rest of its batch. The
reconciler reads `/api/events` for the categories the conductor handles, from a cursor kept in Redis,
and feeds every event through the same deduplicated path as the intake: an event the webhook already
brought is a duplicate and changes nothing. The first run looks back a configured time. Each pass also
sweeps the redeploy plans (`workers.plan_sweep`): a running plan that lost its timer is moved on.

The cursor is the event's auto id. Octopus filters `/api/events` by `fromAutoId`; the EventResource does
not carry the auto id, and the number in `Events-<n>` is taken as it (true of the simulator; Octopus
assigns both from one sequence as far as the public sources show). Dedupe on `Event.Id` keeps this
safe even where the two differ.
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
from workers.redeploy_plan import PlanStore
from workers.redis_client import as_text
from workers.scheduling import JobScheduler

log = structlog.get_logger("conductor.reconciler")

BATCH = 200
# Re-read a few events before the cursor: an event committed a moment late is still seen, and the
# dedupe record makes the re-read free of effects.
OVERLAP = 20


@dataclass(frozen=True)
class ReconcileResult:
    read: int
    queued: int
    duplicates: int
    too_old: int
    cursor: int | None
    plans_woken: int = 0


def auto_id(event_id: str) -> int:
    return int(event_id.rsplit("-", 1)[1])


def cursor_key(keys: RedisKeys) -> str:
    return f"{keys.prefix}:reconcile:cursor"


def reconcile_once(
    *,
    client: OctopusClient,
    queue: EventQueue,
    connection: redis.Redis,
    categories: Iterable[str],
    spaces: Sequence[str],
    lookback: timedelta,
) -> ReconcileResult:
    """Feed every event since the cursor (or within `lookback` on the first run) to the queue.

    An event older than the dedupe window is left alone: its dedupe record may be gone, so queueing it
    could do again what was done (after a quiet spell, or a reconciler stopped for longer than the window).
    """
    # First, and whatever Octopus answers below: a plan that lost its timer needs only Redis to move on.
    woken = sweep_plans(PlanStore(connection, queue.keys.prefix), JobScheduler(queue.queue, queue.policy, queue.keys))
    key = cursor_key(queue.keys)
    stored = connection.get(key)
    params: dict[str, str | int | bool | None] = {
        "eventCategories": ",".join(sorted(categories)),
        "spaces": ",".join(spaces) or None,
        "includeSystem": True,
        "excludeDifference": True,
    }
    if stored is None:
        params["from"] = (datetime.now(UTC) - lookback).isoformat()
    else:
        params["fromAutoId"] = max(1, int(as_text(stored)) + 1 - OVERLAP)
    # The log is newest first: read it whole, then store oldest first so the cursor only moves forward.
    events = []
    for resource in client.items("/api/events", params):
        try:
            events.append(OctopusEvent.model_validate(resource))
        except ValidationError as error:
            log.warning("audit event skipped: not an event the conductor can read", error=str(error)[:200])
    events.sort(key=lambda event: auto_id(event.Id))
    oldest_safe = datetime.now(UTC) - timedelta(seconds=queue.dedupe_window_seconds) + _margin(queue)
    too_old = [event for event in events if event.Occurred < oldest_safe]
    unseen_too_old = [event for event in too_old if stored is None or auto_id(event.Id) > int(as_text(stored))]
    if unseen_too_old:  # the overlap re-reads old events every pass; only news is worth a warning
        log.warning(
            "audit events older than the dedupe window left alone",
            count=len(unseen_too_old),
            last=unseen_too_old[-1].Id,
        )
    events = [event for event in events if event.Occurred >= oldest_safe]
    queued = duplicates = 0
    cursor = None if stored is None else int(as_text(stored))
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        received = utcnow()
        results = queue.store(
            [Submission(QueuedEvent(event=event, source="reconcile", received_at=received), True) for event in batch]
        )
        queued += sum(result.outcome == "queued" for result in results)
        duplicates += sum(result.outcome == "duplicate" for result in results)
        cursor = max(cursor or 0, auto_id(batch[-1].Id))
        connection.set(key, cursor)
    if too_old and not events:
        cursor = max(cursor or 0, auto_id(too_old[-1].Id))
        connection.set(key, cursor)
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


def _margin(queue: EventQueue) -> timedelta:
    """Stay clear of the window's edge by a tenth of it, at most an hour."""
    return min(timedelta(hours=1), timedelta(seconds=queue.dedupe_window_seconds / 10))
