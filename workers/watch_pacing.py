"""How soon the task watcher looks again: a pure function of what it saw, so that a test needs no clock.

One call reads every watched task, so the watcher's pace is that of the task closest to done:
- a task that may be about to finish (running, no history to say otherwise, or past its usual length) is
  looked at every `CLOSE_SECONDS`;
- a running task expected to run long (elapsed time against the last successful run of the same project
  and environment) is looked at again at half its expected remaining time, at most `LONG_SECONDS` away;
- a queued task starts soon or waits behind others: looks space out the longer it has waited;
- a task waiting on a person (`HasPendingInterruptions`) is looked at every `PEOPLE_SECONDS`, but every
  `CLOSE_SECONDS` for a while after the relay was handed it, since the relay may answer at any moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from workers.environment_release import parse_time

CLOSE_SECONDS = 1.0
QUEUED_MAX_SECONDS = 5.0
PEOPLE_SECONDS = 5.0
LONG_SECONDS = 30.0
RELAY_ANSWERS_WITHIN = 60.0


def look_again_in(
    task: Mapping[str, Any],
    *,
    now: datetime,
    usual_seconds: float | None,
    relay_handed_at: datetime | None = None,
) -> float:
    """Seconds until this task is worth reading again."""
    state = task.get("State")
    if state == "Queued":
        queued = parse_time(task.get("QueueTime"))
        waited = max((now - queued).total_seconds(), 0.0) if queued is not None else 0.0
        return min(CLOSE_SECONDS + waited / 4, QUEUED_MAX_SECONDS)
    if task.get("HasPendingInterruptions"):
        if relay_handed_at is not None and (now - relay_handed_at).total_seconds() < RELAY_ANSWERS_WITHIN:
            return CLOSE_SECONDS
        return PEOPLE_SECONDS
    started = parse_time(task.get("StartTime"))
    if usual_seconds is None or started is None:
        return CLOSE_SECONDS
    remaining = usual_seconds - max((now - started).total_seconds(), 0.0)
    return min(max(remaining / 2, CLOSE_SECONDS), LONG_SECONDS)


def run_seconds(task: Mapping[str, Any]) -> float | None:
    """How long a finished task ran, from its start to its completion (Octopus's clock at both ends)."""
    started, completed = parse_time(task.get("StartTime")), parse_time(task.get("CompletedTime"))
    if started is None or completed is None or completed < started:
        return None
    return (completed - started).total_seconds()
