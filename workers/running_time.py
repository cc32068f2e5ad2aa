"""A deployment's running time: what every limit on a deployment counts.

Running means the task is `Executing` with no pending interruption (`HasPendingInterruptions` on the task
resource). Waiting for people (a manual intervention, a guided failure) and waiting in the queue do not
count. The conductor only knows what it sees when it reads the task, so the time between two looks counts
when both looks saw the task running: a look that sees it waiting (or queued) stops the count, and a
deployment is never charged for time it may have spent waiting. A look that comes late counts in full only
if the task was running at both ends; the undercount is at most one look apart from the truth.

Pure data and a pure function, so that any limit (the redeploy timeout, a promotion's limit) uses the same
definition and a test needs neither Redis nor HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RunningTime(BaseModel):
    """The tally so far: seconds counted as running, and the last look that fed it."""

    seconds: float = 0.0
    looks: int = 0
    last_look_at: datetime | None = None
    last_look_running: bool = False


def is_running(task: Mapping[str, Any]) -> bool:
    """Executing, and not held by an interruption that waits for a person."""
    return task.get("State") == "Executing" and not task.get("HasPendingInterruptions")


def tally(previous: RunningTime, *, running: bool, at: datetime) -> RunningTime:
    """The tally after one more look at the task, made at `at`, that saw it `running` (or not)."""
    seconds = previous.seconds
    if running and previous.last_look_running and previous.last_look_at is not None and at > previous.last_look_at:
        seconds += (at - previous.last_look_at).total_seconds()
    return RunningTime(seconds=seconds, looks=previous.looks + 1, last_look_at=at, last_look_running=running)
