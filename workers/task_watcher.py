"""The task watcher: every task the plans have in flight, read in one call, so that the next component starts
within about a second of the last one finishing, whatever Octopus's 30 s webhook batches do.

Each `conductor worker` runs a watcher thread, and one of them acts at a time: the holder of a Redis lock
(`task-watcher`) that it renews every half second and gives up when it stops; the others stand by and take
over within the lock's few seconds should it die. A lock rather than an RQ job: RQ's scheduler runs per
queue and due times in whole seconds, and a job that reschedules itself would queue behind every event and
pay RQ's bookkeeping (about 20 Redis round trips) each second; a thread beside the worker's loop looks at
its own pace and costs one Octopus call per look.

A look is `GET /api/tasks?ids=<a>,<b>,...` (`IDS_PER_CALL` ids a page), at the pace of the task closest to
done (`workers.watch_pacing`), and never more often than once a second per page: its calls per second do
not grow with the tasks in flight. What it sees it hands over, once each (`workers.watch_records`):
- a finished task: the deployment's outcome is recorded as `DeploymentSucceeded` / `DeploymentFailed`
  would record it (`workers.outcomes`), and its plan's advance is queued. Whichever comes first, the
  watcher or the webhook, the second finds the step settled and does nothing;
- a pending interruption of a plan that relays approvals: a job lists the deployment's pending
  interruptions and gives each to the relay's own entry (`approval_relay.look_again`), which its records
  deduplicate against the webhook's `ManualInterventionInterruptionRaised`.
Beside the plans' own tasks it lists what Octopus runs in a space, whoever made it, while stuck deployments
or exclusion groups need it (`workers.running_watch`).
Each look is also written down per task (a sighting), so that a plan's timer, the fallback when the
watcher is lost, reads that instead of Octopus while a watcher is alive, and fires less often.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from workers import approval_relay
from workers.directory import Doc
from workers.errors import PermanentError
from workers.events import utcnow
from workers.octopus import OctopusUnavailable, Params
from workers.outcomes import read_deployment_outcome, store_deployment_outcome
from workers.plan_steps import ADVANCE_PLAN_JOB, orchestration_named
from workers.plans import Plan
from workers.promotion import PROMOTION_STEP_JOB
from workers.running_watch import RunningWatch
from workers.runtime import WorkerContext
from workers.watch_pacing import CLOSE_SECONDS, look_again_in, run_seconds
from workers.watch_records import WATCHER_LOCK, WatchRecords

log = structlog.get_logger("conductor.watcher")

RELAY_JOB = "workers.jobs.relay_pending_approvals"
# About 3.8 KB of query for 200 ids of ServerTasks-nnnnnnn: within what HTTP servers accept in a URL.
IDS_PER_CALL = 200
LOCK_SECONDS = 5
STANDBY_SECONDS = 1.0
TICK_SECONDS = 0.5
TROUBLE_SECONDS = 5.0
FINISHED = "finished"
RELAY = "relay"
PARENT_STEP = "parent-step"
# A parent waiting for its deploy step is looked at this often: the step after the people's last approval
# then starts within it, at one interruptions list per look per planned promotion.
PARENT_SECONDS = 2.0
# A relay's outcome that needs no more looks (`workers.approval_records`).
SETTLED = frozenset({"relayed", "refused", "answered_by_person"})
# How many of the newest promotions to look through for parents still waiting for their deploy step.
PROMOTIONS_SCANNED = 50


@dataclass(frozen=True)
class WatchedTask:
    """A deployment task a plan waits for, with what its outcome record and its plan need."""

    task_id: str
    deployment_id: str
    plan_id: str
    plan_kind: str
    orchestration: str
    space_id: str
    project_id: str
    environment_id: str
    tenant_id: str | None


def waiting_parents(plans: Iterable[Plan]) -> list[WatchedTask]:
    """The parent task of each promotion that is planned and waits for its "Deploy the components"."""
    return [
        WatchedTask(
            task_id=plan.parent.task_id,
            deployment_id=plan.parent.deployment_id,
            plan_id=plan.id,
            plan_kind="parent",
            orchestration=plan.orchestration,
            space_id=plan.space_id,
            project_id="",
            environment_id=plan.environment_id,
            tenant_id=plan.tenant_id,
        )
        for plan in plans
        if plan.kind == "promotion" and plan.status == "planned" and plan.parent is not None
    ]


def in_flight(plans: Iterable[Plan]) -> list[WatchedTask]:
    """Every task of a step that has a deployment Octopus may still run (deploying or cancelling)."""
    watched = []
    for plan in plans:
        for step in plan.steps:
            if step.status in ("deploying", "cancelling") and step.task_id and step.deployment_id:
                watched.append(
                    WatchedTask(
                        task_id=step.task_id,
                        deployment_id=step.deployment_id,
                        plan_id=plan.id,
                        plan_kind=plan.kind,
                        orchestration=plan.orchestration,
                        space_id=plan.space_of(step),
                        project_id=step.project_id or "",
                        environment_id=plan.environment_of(step),
                        tenant_id=step.tenant_id or plan.tenant_id,
                    )
                )
    return watched


def read_tasks(context: WorkerContext, task_ids: list[str]) -> dict[str, Doc]:
    """The tasks by id, `IDS_PER_CALL` to a call (Octopus's list parameter: comma-separated ids)."""
    client, _ = context.octopus_api()
    found: dict[str, Doc] = {}
    for start in range(0, len(task_ids), IDS_PER_CALL):
        chunk = task_ids[start : start + IDS_PER_CALL]
        page = client.get("/api/tasks", {"ids": ",".join(chunk), "skip": 0, "take": len(chunk)})
        for task in page["Items"]:
            found[str(task["Id"])] = task
    return found


def relay_pending(space_id: str, deployment_id: str, context: WorkerContext, *, task_id: str = "") -> dict[str, Any]:
    """The relay's own entry for each interruption pending in the deployment, as the webhook would give it. When
    every one of them is settled (none still looked for), the hand-off is given back, so that the task's next
    manual step is handed over as soon as it is raised instead of waiting for the webhook."""
    client, _ = context.octopus_api()
    params: Params = {"regarding": deployment_id, "pendingOnly": True}
    interruption_ids = [item["Id"] for item in client.items(f"/api/{space_id}/interruptions", params)]
    relays = [approval_relay.look_again(space_id, interruption_id, context) for interruption_id in interruption_ids]
    if task_id and all(relay.get("status") in SETTLED for relay in relays):
        WatchRecords(context.redis, context.keys.prefix, retention=context.retention).take_back(RELAY, task_id)
    return {"deployment": deployment_id, "relays": relays}


def promotion_steps_pending(plan: Plan, context: WorkerContext, records: WatchRecords) -> list[str]:
    """A planned promotion's parent has an interruption pending: hand the conductor's deploy step, once raised, to
    the promotion (as its webhook would), once; the people's steps are theirs. Returns the interruptions handed."""
    assert plan.parent is not None
    client, _ = context.octopus_api()
    deploy_step = orchestration_named(context, plan.orchestration).promotion.deploy_step
    params: Params = {"regarding": plan.parent.deployment_id, "pendingOnly": True}
    handed = []
    for interruption in client.items(f"/api/{plan.space_id}/interruptions", params):
        if interruption.get("Title") != deploy_step or not records.hand_over(PARENT_STEP, str(interruption["Id"])):
            continue
        context.require_scheduler().soon(
            PROMOTION_STEP_JOB, plan.space_id, plan.parent.deployment_id, str(interruption["Id"])
        )
        handed.append(str(interruption["Id"]))
    return handed


class TaskWatcher:
    """One worker's watcher: stands by, or holds the lock and looks."""

    def __init__(self, context: WorkerContext, *, name: str | None = None) -> None:
        self.context = context
        self.name = name or f"watcher-{uuid.uuid4().hex[:8]}"
        self.records = WatchRecords(context.redis, context.keys.prefix, retention=context.retention)
        self.looks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_look = 0.0
        self._known: set[str] = set()
        self._finished: set[str] = set()
        self._relays: dict[str, datetime] = {}
        # What Octopus runs, whoever made it, for stuck deployments and exclusion groups.
        self.running = RunningWatch(context)

    # --- the thread -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="task-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def run(self) -> None:
        """Until stopped: hold the lock and look when a look is due; stand by otherwise. Never raises."""
        try:
            while not self._stop.is_set():
                self._stop.wait(self.step())
        finally:
            try:
                self.context.locks.release(WATCHER_LOCK, self.name)
            except Exception as error:  # stopping anyway: the lock expires within seconds
                log.warning("watcher stopped without releasing its lock", error=repr(error))

    def step(self) -> float:
        """One turn: returns how long to wait before the next."""
        try:
            if not self.context.locks.acquire(WATCHER_LOCK, self.name, ttl_seconds=LOCK_SECONDS):
                self._forget()
                return STANDBY_SECONDS
            self.records.beat(self.name)
            plans = self.context.plans
            watched = in_flight(plans.running()) + waiting_parents(
                plans.recent(PROMOTIONS_SCANNED, promotions_only=True)
            )
            now = time.monotonic()
            fresh = [task for task in watched if task.task_id not in self._known]
            if fresh:
                self._next_look = min(self._next_look, now + CLOSE_SECONDS)
            if watched and now >= self._next_look:
                self._next_look = time.monotonic() + self.look(watched)
            self.running.look_if_due()
            return max(min(TICK_SECONDS, self._next_look - time.monotonic()), 0.05)
        except OctopusUnavailable as error:
            log.warning("watcher: Octopus unavailable, looking again later", error=str(error))
            self._next_look = time.monotonic() + TROUBLE_SECONDS
            return TICK_SECONDS
        except Exception as error:
            log.warning("watcher: look failed, trying again later", error=repr(error))
            return TROUBLE_SECONDS

    def _forget(self) -> None:
        """Another watcher acts: what this one knew may be stale when it takes over again."""
        self._known.clear()
        self._finished.clear()
        self._relays.clear()
        self._next_look = 0.0

    # --- a look ---------------------------------------------------------------------------------------

    def look(self, watched: list[WatchedTask]) -> float:
        """Read every watched task in one call (a page per `IDS_PER_CALL`), hand over what it shows, and
        return the seconds until the next look."""
        watched = [task for task in watched if task.task_id not in self._finished]
        task_ids = list(dict.fromkeys(task.task_id for task in watched))
        if not task_ids:
            return CLOSE_SECONDS
        pages = -(-len(task_ids) // IDS_PER_CALL)
        found = read_tasks(self.context, task_ids)
        self.looks += 1
        if not self.context.locks.extend(WATCHER_LOCK, self.name, ttl_seconds=LOCK_SECONDS):
            return CLOSE_SECONDS  # the look took longer than the lock: another watcher acts on it now
        now = utcnow()
        self.records.saw(list(found.values()), at=now)
        newly = [task_id for task_id in task_ids if task_id not in self._known]
        self.records.watched_by(newly, self.name)
        self._known.update(newly)
        usual = self.records.usual(list({(task.project_id, task.environment_id) for task in watched}))
        waits = []
        for item in watched:
            task = found.get(item.task_id)
            if task is None:
                continue  # unknown to Octopus now: the plan's own look says so, with the reason
            if task.get("IsCompleted"):
                self._hand_over_finished(item, task)
                continue
            if item.plan_kind == "parent":
                self._mind_parent(item, task)
                waits.append(PARENT_SECONDS)
                continue
            self._mind_interruptions(item, task, now)
            pair = (item.project_id, item.environment_id)
            waits.append(
                look_again_in(
                    task, now=now, usual_seconds=usual.get(pair), relay_handed_at=self._relays.get(item.task_id)
                )
            )
        return max(min(waits, default=CLOSE_SECONDS), pages * CLOSE_SECONDS)

    def _hand_over_finished(self, item: WatchedTask, task: Doc) -> None:
        self._finished.add(item.task_id)
        self._relays.pop(item.task_id, None)
        if task.get("State") == "Success" and item.project_id:
            ran = run_seconds(task)
            if ran is not None:
                self.records.ran(item.project_id, item.environment_id, ran)
        if not self.records.hand_over(FINISHED, item.task_id):
            return
        if read_deployment_outcome(self.context, item.deployment_id) is None:
            store_deployment_outcome(self.context, outcome_of(item, task))
        self.context.require_scheduler().soon(ADVANCE_PLAN_JOB, item.plan_id)
        log.info(
            "task finished: plan moved on",
            plan=item.plan_id,
            deployment=item.deployment_id,
            task=item.task_id,
            state=task.get("State"),
        )

    def _mind_parent(self, item: WatchedTask, task: Doc) -> None:
        if task.get("HasPendingInterruptions"):
            plan = self.context.plans.load(item.plan_id)
            if plan is not None and plan.status == "planned":
                promotion_steps_pending(plan, self.context, self.records)

    def _mind_interruptions(self, item: WatchedTask, task: Doc, now: datetime) -> None:
        """Hand a pending interruption to the relay; hand the task's next one over once the relay gave the
        hand-off back (every answer in), or once none is pending."""
        if not task.get("HasPendingInterruptions"):
            if self._relays.pop(item.task_id, None) is not None:
                self.records.take_back(RELAY, item.task_id)
            return
        if item.task_id in self._relays and self.records.handed_at(RELAY, item.task_id) is None:
            self._relays.pop(item.task_id)  # the relay settled what it was handed: the next step is new
        if item.task_id in self._relays or not self._relays_approvals(item):
            return
        if self.records.hand_over(RELAY, item.task_id):
            self._relays[item.task_id] = now
            self.context.require_scheduler().soon(RELAY_JOB, item.space_id, item.deployment_id, item.task_id)
            log.info("interruption pending: handed to the relay", plan=item.plan_id, deployment=item.deployment_id)
        else:
            ago = self.records.handed_at(RELAY, item.task_id) or 0.0
            self._relays[item.task_id] = now - timedelta(seconds=ago)

    def _relays_approvals(self, item: WatchedTask) -> bool:
        if item.plan_kind == "promotion":
            return True
        try:
            return orchestration_named(self.context, item.orchestration).approvals.enabled
        except PermanentError:
            return False


def outcome_of(item: WatchedTask, task: Doc) -> dict[str, str]:
    """The outcome record `DeploymentSucceeded` / `DeploymentFailed` would write, from the task itself."""
    return {
        "deployment": item.deployment_id,
        "project": item.project_id,
        "release": "",
        "environment": item.environment_id,
        "tenant": item.tenant_id or "",
        "task": item.task_id,
        "space": item.space_id,
        "result": "Success" if task.get("State") == "Success" else "Failed",
        "occurred": str(task.get("CompletedTime") or ""),
        "event": "",
        "source": "task watcher",
    }
