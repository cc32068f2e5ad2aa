"""What Octopus itself says about a window's deployments, for the deployment report.

Per orchestration, `GET /api/{space}/deployments?projects=<parent and components>` read newest first, page
after page, until a deployment created before the window (Octopus lists deployments most recent first,
octopus-api.md §2.10), and their tasks in one `GET /api/tasks?ids=...` per `TASKS_PER_CALL` (§2.11): their
state, start and completion. A project named by two orchestrations is listed under the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workers.approval_binding import marker_name
from workers.directory import Directory, Doc, UnknownName
from workers.octopus import OctopusClient
from workers.rules import Rules

TASKS_PER_CALL = 200


@dataclass(frozen=True)
class Listed:
    """A deployment in Octopus's list, and the orchestration whose projects it is of."""

    orchestration: str
    space_id: str
    deployment: Doc

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(str(self.deployment["Created"]))


def listed_deployments(
    client: OctopusClient, directory: Directory, rules: Rules, *, since: datetime
) -> tuple[list[Listed], list[str]]:
    """Every deployment of the orchestrations' projects created at or after `since`, and notes on the
    projects that could not be found. Raises OctopusUnavailable / OctopusRequestFailed."""
    found: list[Listed] = []
    notes: list[str] = []
    seen: set[str] = set()
    for orchestration in rules.orchestrations:
        space_id = directory.space_id(orchestration.space)
        names = [orchestration.parent_project] if orchestration.parent_project else []
        names += [component.project for component in orchestration.components]
        project_ids = []
        for name in names:
            try:
                project_ids.append(str(directory.project(space_id, name)["Id"]))
            except UnknownName as error:
                notes.append(f"{orchestration.name}: {error}, so its deployments are not listed")
        if not project_ids:
            continue
        for deployment in client.items(f"/api/{space_id}/deployments", {"projects": ",".join(project_ids)}):
            item = Listed(orchestration.name, space_id, deployment)
            if item.created < since:
                break
            if deployment["Id"] not in seen:
                seen.add(deployment["Id"])
                found.append(item)
    return found, notes


def tasks(client: OctopusClient, task_ids: Iterable[str]) -> dict[str, Doc]:
    """Task id → task, for those Octopus has."""
    wanted = sorted(set(task_ids))
    found: dict[str, Doc] = {}
    for start in range(0, len(wanted), TASKS_PER_CALL):
        chunk = wanted[start : start + TASKS_PER_CALL]
        page = client.get("/api/tasks", {"ids": ",".join(chunk), "skip": 0, "take": len(chunk)})
        found.update({str(task["Id"]): task for task in page["Items"]})
    return found


def conductor_plan(deployment: Doc, service_account_id: str) -> str | None:
    """The conductor plan a deployment belongs to, read from Octopus alone: the plan its marker names, when the
    service account created it (a marker copied into a person's comment binds nothing)."""
    if deployment.get("DeployedById") != service_account_id:
        return None
    name = marker_name(deployment.get("Comments"))
    return name.split("/", 1)[0] if name else None
