"""The task watcher's second look: what Octopus runs in a space, whoever made it, for stuck deployments and
exclusion groups. It looks only while something needs it, one call per look per space:
- a space where some orchestration sets `stuck_after_seconds`: every `RUNNING_SECONDS` (5 s), or every half
  of the smallest limit when that is shorter, at least `CLOSE_SECONDS` apart;
- a space where a plan step waits on an exclusion group: every `CLOSE_SECONDS`, so that the step starts within
  about a second of the other deployment's end.
Its calls per second depend on the spaces that need it, never on the tasks in flight. Only the watcher that
holds the watcher's lock looks (`workers.task_watcher`).
"""

from __future__ import annotations

import time

import structlog

from workers.events import utcnow
from workers.exclusion import ExclusionWaits, blocks, spaces_waiting
from workers.octopus import OctopusUnavailable
from workers.plan_steps import ADVANCE_PLAN_JOB
from workers.running_deployments import RunningDeployment, list_running
from workers.runtime import WorkerContext
from workers.stuck_deployments import StuckLimit, stuck_limits, watch_for_stuck
from workers.watch_pacing import CLOSE_SECONDS

log = structlog.get_logger("conductor.watcher")

RUNNING_SECONDS = 5.0
TROUBLE_SECONDS = 5.0
# Which projects the limits cover is read again this often (names resolve through the cached directory).
LIMITS_SECONDS = 60.0


def pace(limits: dict[str, StuckLimit], *, waiting: bool) -> float:
    """Seconds between two looks at a space."""
    if waiting:
        return CLOSE_SECONDS
    smallest = min((limit.seconds for limit in limits.values()), default=None)
    if smallest is None:
        return RUNNING_SECONDS
    return max(CLOSE_SECONDS, min(RUNNING_SECONDS, smallest / 2))


class RunningWatch:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.looks = 0
        self._due: dict[str, float] = {}
        self._limits: dict[str, dict[str, StuckLimit]] = {}
        self._limits_read_at: float | None = None
        self._trouble_until = 0.0

    def look_if_due(self) -> None:
        """Look at each space that needs it and is due. Never raises: a failed look is tried again later."""
        rules = self.context.rules
        if rules is None:
            return
        stuck = any(item.stuck_after_seconds is not None for item in rules.orchestrations)
        now = time.monotonic()
        if now < self._trouble_until:
            return
        try:
            waiting = spaces_waiting(self.context) if rules.exclusion_groups else set()
            limits = self._stuck_limits() if stuck else {}
        except Exception as error:
            log.warning("watcher: cannot tell which spaces to look at, trying again later", error=repr(error))
            self._trouble_until = now + TROUBLE_SECONDS
            return
        for space_id in sorted(set(limits) | waiting):
            if now < self._due.get(space_id, 0.0):
                continue
            self._due[space_id] = now + pace(limits.get(space_id, {}), waiting=space_id in waiting)
            try:
                self._look(space_id, limits.get(space_id), waiting=space_id in waiting)
            except OctopusUnavailable as error:
                log.warning("watcher: Octopus unavailable, looking again later", space=space_id, error=str(error))
                self._due[space_id] = now + TROUBLE_SECONDS
            except Exception as error:
                log.warning("watcher: running deployments look failed", space=space_id, error=repr(error))
                self._due[space_id] = now + TROUBLE_SECONDS

    def _look(self, space_id: str, limits: dict[str, StuckLimit] | None, *, waiting: bool) -> None:
        running = list_running(self.context, space_id)
        self.looks += 1
        if limits:
            watch_for_stuck(self.context, running, limits, at=utcnow())
        if waiting:
            wake_waiting(self.context, space_id, running)

    def _stuck_limits(self) -> dict[str, dict[str, StuckLimit]]:
        now = time.monotonic()
        if self._limits_read_at is None or now - self._limits_read_at > LIMITS_SECONDS:
            self._limits = stuck_limits(self.context)
            self._limits_read_at = now
        return self._limits


def wake_waiting(context: WorkerContext, space_id: str, running: list[RunningDeployment]) -> list[str]:
    """Move on each plan of the space whose exclusion wait is over (nothing of its group deploying there now).
    The plan looks again itself: another deployer may have started meanwhile."""
    waits = ExclusionWaits(context)
    woken = []
    for plan_id, entry in waits.waiting().items():
        if entry["space"] != space_id:
            continue
        if any(blocks(item, entry) for item in running) or not waits.take(plan_id):
            continue
        context.require_scheduler().soon(ADVANCE_PLAN_JOB, plan_id)
        woken.append(plan_id)
        log.info("exclusion wait over: plan moved on", plan=plan_id, space=space_id)
    return woken
