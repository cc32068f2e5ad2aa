"""Server tasks on a clock: Queued -> Executing -> Success / Failed, pausing on interruptions.

`advance` moves every active task as far as the current time allows; the app's background loop calls it
whenever something changes or a task becomes due, so zero durations finish tasks in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulator.audit import MessagePart, write_event
from simulator.interruptions import GUIDED, MANUAL, cancel_pending, raise_interruption
from simulator.machine_health import apply_health
from simulator.store import Doc, Store, TenantKey
from simulator.targeting import PlannedAction
from simulator.timeutil import human_duration, iso

FAILED_MESSAGE = "The deployment failed because one or more steps failed. Please see the deployment log for details."


@dataclass
class TaskRun:
    task_id: str
    kind: str  # "Deploy" or "Health"
    queue_until: datetime
    queue_expiry: datetime | None = None
    deployment_id: str | None = None
    lock_key: tuple[str, str, TenantKey] | None = None
    stages: list[list[PlannedAction]] = field(default_factory=list)
    stage_index: int = -1
    stage_due: datetime | None = None
    pending: set[str] = field(default_factory=set)
    guided_failure: bool = False
    failed_action: PlannedAction | None = None
    health_machine_ids: list[str] = field(default_factory=list)
    warnings: bool = False


def new_task_doc(
    store: Store,
    *,
    space_id: str,
    name: str,
    description: str,
    arguments: Doc,
    queue_time: datetime,
    queue_expiry: datetime | None = None,
    project_id: str | None = None,
) -> Doc:
    task_id = store.next_id("ServerTasks")
    task: Doc = {
        "Id": task_id,
        "SpaceId": space_id,
        "Name": name,
        "Description": description,
        "Arguments": arguments,
        "State": "Queued",
        "Completed": "",
        "QueueTime": iso(queue_time),
        "QueueTimeExpiry": iso(queue_expiry),
        "StartTime": None,
        "LastUpdatedTime": iso(store.now()),
        "CompletedTime": None,
        "ServerNode": "OCTOPUS-SIMULATOR",
        "Duration": "0 seconds",
        "ErrorMessage": "",
        "HasBeenPickedUpByProcessor": False,
        "IsCompleted": False,
        "FinishedSuccessfully": False,
        "HasPendingInterruptions": False,
        "PendingInterruptionTypes": [],
        "HasPendingPreconditions": False,
        "PendingPreconditionTypes": [],
        "CanRerun": False,
        "HasWarningsOrErrors": False,
        "ProjectId": project_id,
        "EstimatedRemainingQueueDurationSeconds": 0,
        "Links": {
            "Self": f"/api/tasks/{task_id}",
            "Web": f"/app#/{space_id}/tasks/{task_id}",
            "Raw": f"/api/tasks/{task_id}/raw",
            "Details": f"/api/tasks/{task_id}/details{{?verbose,tail,ranges}}",
            "Cancel": f"/api/tasks/{task_id}/cancel",
            "QueuedBehind": f"/api/tasks/{task_id}/queued-behind{{?skip,take}}",
            "Artifacts": f"/api/{space_id}/artifacts?regarding={task_id}",
            "Interruptions": f"/api/{space_id}/interruptions?regarding={task_id}",
        },
    }
    store.tasks[task_id] = task
    store.task_logs[task_id] = []
    return task


def start_run(store: Store, run: TaskRun) -> None:
    store.task_runs[run.task_id] = run
    store.active_tasks[run.task_id] = None
    store.on_task_change()


def log(store: Store, task_id: str, text: str) -> None:
    store.task_logs[task_id].append((iso(store.now()) or "", text))


def refresh(store: Store, task: Doc) -> Doc:
    """Keep Duration current for a running task."""
    if task["StartTime"] and not task["IsCompleted"]:
        started = datetime.fromisoformat(task["StartTime"])
        task["Duration"] = human_duration(store.now() - started)
    return task


def _touch(store: Store, task: Doc) -> None:
    task["LastUpdatedTime"] = iso(store.now())


def _deployment_message(store: Store, deployment: Doc, verb: str) -> list[MessagePart]:
    project = store.projects[deployment["ProjectId"]]
    release = store.releases[deployment["ReleaseId"]]
    environment = store.environments[deployment["EnvironmentId"]]
    parts: list[MessagePart] = [
        (deployment["Name"], deployment["Id"]),
        f" {verb} for ",
        (project["Name"], project["Id"]),
        " release ",
        (release["Version"], release["Id"]),
        " to ",
        (environment["Name"], environment["Id"]),
    ]
    if deployment.get("TenantId"):
        tenant = store.tenants[deployment["TenantId"]]
        parts += [" for ", (tenant["Name"], tenant["Id"])]
    return parts


def deployment_related(deployment: Doc) -> list[str]:
    related = [
        deployment["Id"],
        deployment["ProjectId"],
        deployment["ReleaseId"],
        deployment["EnvironmentId"],
        deployment["TaskId"],
        deployment["ChannelId"],
    ]
    if deployment.get("TenantId"):
        related.append(deployment["TenantId"])
    return related


def deployment_event(store: Store, deployment: Doc, category: str, verb: str, user: Doc | None = None) -> None:
    write_event(
        store,
        category=category,
        message=_deployment_message(store, deployment, verb),
        related=deployment_related(deployment),
        space_id=deployment["SpaceId"],
        user=user,
    )


def advance(store: Store) -> datetime | None:
    """Move every active task as far as now allows; return when the next one is due (None: nothing timed)."""
    progressed = True
    while progressed:
        progressed = False
        for task_id in list(store.active_tasks):
            if _advance_one(store, store.task_runs[task_id]):
                progressed = True
    due: list[datetime] = []
    for task_id in store.active_tasks:
        run = store.task_runs[task_id]
        if store.tasks[task_id]["State"] == "Queued":
            due.append(run.queue_until)
        elif not run.pending and run.stage_due is not None:
            due.append(run.stage_due)
    return min(due) if due else None


def _advance_one(store: Store, run: TaskRun) -> bool:
    task = store.tasks[run.task_id]
    now = store.now()
    if task["State"] == "Queued":
        if run.queue_expiry is not None and now > run.queue_expiry:
            _finish(store, run, "TimedOut", "The task was not started before its queue time expired.")
            return True
        if now < run.queue_until:
            return False
        if run.lock_key is not None:
            holder = store.concurrency_locks.get(run.lock_key)
            if holder is not None and holder != run.task_id:
                return False
            store.concurrency_locks[run.lock_key] = run.task_id
        task["State"] = "Executing"
        task["StartTime"] = iso(now)
        task["HasBeenPickedUpByProcessor"] = True
        _touch(store, task)
        log(store, run.task_id, f"{task['Description']} started")
        if run.deployment_id:
            deployment_event(store, store.deployments[run.deployment_id], "DeploymentStarted", "started ")
        _begin_stage(store, run, 0)
        return True
    if task["State"] != "Executing" or run.pending:
        return False
    if run.stage_due is not None and now < run.stage_due:
        return False
    return _complete_stage(store, run)


def _stage_duration(store: Store, stage: list[PlannedAction]) -> timedelta:
    if all(action.is_manual for action in stage):
        return timedelta(0)
    return timedelta(seconds=store.settings.step_duration)


def _begin_stage(store: Store, run: TaskRun, index: int) -> None:
    run.stage_index = index
    run.failed_action = None
    if run.kind == "Health":
        run.stage_due = store.now() + timedelta(seconds=store.settings.health_check_delay)
        return
    if index >= len(run.stages):
        _finish(store, run, "Success")
        return
    stage = run.stages[index]
    run.stage_due = store.now() + _stage_duration(store, stage)
    task = store.tasks[run.task_id]
    for action in stage:
        log(store, run.task_id, f"Step {action.action_number}: {action.action_name}")
        if action.is_manual and run.deployment_id:
            interruption = raise_interruption(
                store, task=task, deployment=store.deployments[run.deployment_id], action=action, kind=MANUAL
            )
            run.pending.add(interruption["Id"])
    _sync_pending(store, run)


def _failure_for(store: Store, run: TaskRun, action: PlannedAction) -> str | None:
    """Consume a matching step-failure rule, if any."""
    if run.deployment_id is None or action.is_manual:
        return None
    deployment = store.deployments[run.deployment_id]
    for rule in store.step_failures:
        if (
            rule.remaining > 0
            and rule.project_id == deployment["ProjectId"]
            and rule.step_name.lower() in (action.step_name.lower(), action.action_name.lower())
            and rule.environment_id in (None, deployment["EnvironmentId"])
            and rule.release_id in (None, deployment["ReleaseId"])
        ):
            rule.remaining -= 1
            return rule.error_message
    return None


def _complete_stage(store: Store, run: TaskRun) -> bool:
    if run.kind == "Health":
        for machine_id in run.health_machine_ids:
            apply_health(store, machine_id, store.health_targets.get(machine_id, "Healthy"))
        _finish(store, run, "Success")
        return True
    stage = run.stages[run.stage_index]
    for action in stage:
        failure = _failure_for(store, run, action)
        if failure is None:
            continue
        log(store, run.task_id, f"Step {action.action_number}: {action.action_name} failed: {failure}")
        if run.guided_failure and run.deployment_id:
            run.failed_action = action
            interruption = raise_interruption(
                store,
                task=store.tasks[run.task_id],
                deployment=store.deployments[run.deployment_id],
                action=action,
                kind=GUIDED,
                failure=f"The step '{action.action_name}' failed: {failure}",
            )
            run.pending.add(interruption["Id"])
            run.stage_due = None
            _sync_pending(store, run)
            return True
        _finish(store, run, "Failed", FAILED_MESSAGE)
        return True
    _begin_stage(store, run, run.stage_index + 1)
    return True


def _sync_pending(store: Store, run: TaskRun) -> None:
    task = store.tasks[run.task_id]
    types = sorted({store.interruptions[i]["Type"] for i in run.pending})
    task["PendingInterruptionTypes"] = types
    task["HasPendingInterruptions"] = bool(types)
    _touch(store, task)


def _finish(store: Store, run: TaskRun, state: str, error: str = "") -> None:
    task = store.tasks[run.task_id]
    now = store.now()
    task["State"] = state
    task["IsCompleted"] = True
    task["FinishedSuccessfully"] = state == "Success"
    task["ErrorMessage"] = error
    task["CompletedTime"] = iso(now)
    task["Completed"] = now.strftime("%A, %d %B %Y %I:%M %p")
    if task["StartTime"]:
        task["Duration"] = human_duration(now - datetime.fromisoformat(task["StartTime"]))
    task["HasWarningsOrErrors"] = state != "Success" or run.warnings
    run.pending.clear()
    run.stage_due = None
    _sync_pending(store, run)
    cancel_pending(store, run.task_id)
    store.active_tasks.pop(run.task_id, None)
    if run.lock_key is not None and store.concurrency_locks.get(run.lock_key) == run.task_id:
        del store.concurrency_locks[run.lock_key]
    log(store, run.task_id, f"{task['Description']} finished: {state}")
    if run.deployment_id is None:
        return
    deployment = store.deployments[run.deployment_id]
    deployment["FailureEncountered"] = state != "Success" or run.warnings
    if state == "Success":
        store.release_progress[(deployment["ReleaseId"], deployment.get("TenantId"))].add(deployment["EnvironmentId"])
        deployment_event(store, deployment, "DeploymentSucceeded", "succeeded ")
    else:
        # Canceled and timed-out deployments are reported as failed too (inferred).
        deployment_event(store, deployment, "DeploymentFailed", "failed")


def interruption_submitted(store: Store, interruption: Doc, values: dict[str, object], user: Doc) -> None:
    """Resume (or end) the task an interruption was holding."""
    run = store.task_runs.get(interruption["TaskId"])
    if run is None or interruption["Id"] not in run.pending:
        return
    run.pending.discard(interruption["Id"])
    _sync_pending(store, run)
    if interruption["Type"] == MANUAL:
        if values.get("Result") == "Abort":
            _finish(
                store,
                run,
                "Failed",
                f"The manual intervention '{interruption['Title']}' was aborted by {user['DisplayName']}.",
            )
    else:
        guidance = values.get("Guidance")
        action = run.failed_action
        if guidance == "Fail":
            _finish(store, run, "Failed", FAILED_MESSAGE)
        elif guidance == "Retry":
            log(store, run.task_id, "Retrying the failed step")
            run.stage_due = store.now() + timedelta(seconds=store.settings.step_duration)
        else:
            run.warnings = True
            if guidance == "Exclude" and action is not None and run.deployment_id:
                _exclude_machines(store, run, set(action.machine_ids))
            _begin_stage(store, run, run.stage_index + 1)
    store.on_task_change()


def _exclude_machines(store: Store, run: TaskRun, machine_ids: set[str]) -> None:
    assert run.deployment_id is not None
    deployment = store.deployments[run.deployment_id]
    deployment["DeployedToMachineIds"] = [m for m in deployment["DeployedToMachineIds"] if m not in machine_ids]
    for stage in run.stages[run.stage_index + 1 :]:
        for action in stage:
            action.machine_ids = [m for m in action.machine_ids if m not in machine_ids]


def cancel(store: Store, task_id: str, user: Doc | None = None) -> None:
    """Cancel at once: TaskCanceled by the caller, then the deployment's DeploymentFailed (by the system)."""
    run = store.task_runs.get(task_id)
    task = store.tasks[task_id]
    if task["IsCompleted"] or run is None:
        return
    related = [task_id]
    if run.deployment_id is not None:
        related += deployment_related(store.deployments[run.deployment_id])
    by = f" by {user['DisplayName']} ({user['Username']})" if user else ""
    write_event(
        store,
        category="TaskCanceled",
        message=[(task["Description"], task_id), f" was canceled{by}"],
        related=related,
        space_id=task["SpaceId"],
        user=user,
    )
    log(store, task_id, f"Canceled{by}")
    _finish(store, run, "Canceled", "The task was canceled.")
    store.on_task_change()
