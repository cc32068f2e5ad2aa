"""Server tasks: list with filters, get, details, raw log, cancel."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulator.paging import bool_param, collection, list_param
from simulator.routes.common import allow, ok, path_param, store
from simulator.store import Doc, get_doc
from simulator.task_clock import cancel, refresh

ACTIVE = ("Queued", "Executing", "Cancelling")


def _task(request: Request) -> Doc:
    return refresh(store(request), get_doc(store(request).tasks, path_param(request, "id")))


async def list_tasks(request: Request) -> Response:
    """Newest first. states, name, project, environment, tenant, spaces, ids, active, running,
    hasPendingInterruptions, partialName (description)."""
    s = store(request)
    states = set(list_param(request, "states"))
    name = request.query_params.get("name")
    project = request.query_params.get("project")
    environment = request.query_params.get("environment")
    tenant = request.query_params.get("tenant")
    spaces = set(list_param(request, "spaces"))
    space = request.scope.get("state", {}).get("space_id")
    if space:
        spaces = {space}
    ids = set(list_param(request, "ids"))
    active = bool_param(request, "active")
    running = bool_param(request, "running")
    pending = request.query_params.get("hasPendingInterruptions")
    partial = (request.query_params.get("partialName") or "").lower()
    matched: list[Doc] = []
    for task in reversed(list(s.tasks.values())):
        if ids and task["Id"] not in ids:
            continue
        if spaces and task["SpaceId"] not in spaces:
            continue
        if name and task["Name"] != name:
            continue
        if (project or environment or tenant) and not _deployment_matches(
            s.deployments, task, project, environment, tenant
        ):
            continue
        if active and task["State"] not in ACTIVE:
            continue
        if running and task["State"] != "Executing":
            continue
        if pending not in (None, "") and task["HasPendingInterruptions"] != bool_param(
            request, "hasPendingInterruptions"
        ):
            continue
        if partial and partial not in task["Description"].lower():
            continue
        matched.append(task)
    counts = Counter(t["State"] for t in matched)
    found = [refresh(s, t) for t in matched if not states or t["State"] in states]
    return ok(collection(request, found, "Task", extra={"TotalCounts": dict(counts), "TotalCountsInOtherSpaces": {}}))


def _deployment_matches(
    deployments: dict[str, Doc], task: Doc, project: str | None, environment: str | None, tenant: str | None
) -> bool:
    deployment = deployments.get(task["Arguments"].get("DeploymentId", ""))
    if deployment is None:
        return False
    return (
        (not project or deployment["ProjectId"] == project)
        and (not environment or deployment["EnvironmentId"] == environment)
        and (not tenant or deployment["TenantId"] == tenant)
    )


async def get_task(request: Request) -> Response:
    return ok(_task(request))


async def task_details(request: Request) -> Response:
    task = _task(request)
    lines = store(request).task_logs.get(task["Id"], [])
    status = "Success" if task["State"] == "Success" else ("Failed" if task["IsCompleted"] else "Running")
    total = len(lines)
    return ok(
        {
            "Task": task,
            "ActivityLogs": [
                {
                    "Id": f"{task['Id']}-root",
                    "Name": task["Description"],
                    "Status": status,
                    "Started": task["StartTime"],
                    "Ended": task["CompletedTime"],
                    "LogElements": [{"Category": "Info", "MessageText": text, "OccurredAt": at} for at, text in lines],
                    "Children": [],
                    "ShowAtSummaryLevel": True,
                }
            ],
            "Progress": {
                "ProgressPercentage": 100 if task["IsCompleted"] else min(99, total * 10),
                "EstimatedTimeRemaining": "",
            },
            "PhysicalLogSize": sum(len(text) for _, text in lines),
            "Links": {"Self": f"/api/tasks/{task['Id']}/details"},
        }
    )


async def task_raw(request: Request) -> Response:
    task = _task(request)
    lines = store(request).task_logs.get(task["Id"], [])
    return PlainTextResponse("\n".join(f"{at}  {text}" for at, text in lines))


async def cancel_task(request: Request) -> Response:
    user = allow(request, "TaskCancel")
    task = _task(request)
    cancel(store(request), task["Id"], user)
    return ok(task)


async def queued_behind(request: Request) -> Response:
    task = _task(request)
    ahead = [
        t
        for t in store(request).tasks.values()
        if t["State"] in ("Queued", "Executing") and t["Id"] != task["Id"] and t["QueueTime"] <= task["QueueTime"]
    ]
    return ok(collection(request, ahead, "Task"))


routes = [
    Route("/api/tasks", list_tasks),
    Route("/api/tasks/{id}", get_task),
    Route("/api/tasks/{id}/details", task_details),
    Route("/api/tasks/{id}/raw", task_raw),
    Route("/api/tasks/{id}/queued-behind", queued_behind),
    Route("/api/tasks/{id}/cancel", cancel_task, methods=["POST"]),
]
