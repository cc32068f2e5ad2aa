"""Which deployments Octopus runs right now in a space, whoever made them: one call per look.

`GET /api/tasks?spaces=<space>&name=Deploy&states=Executing,Cancelling&take=...` (octopus-api.md §2.11) lists
every deployment task in flight, the conductor's and everyone else's. A task names its deployment
(`Arguments.DeploymentId`) and project, not its environment or tenant; those are read once per deployment, for
every deployment not seen before in one `GET /api/{space}/deployments?ids=...` (200 ids a call), and kept in
Redis (a deployment never moves), so a look costs one call however many tasks run. Stuck deployments
(`workers.stuck_deployments`) and exclusion groups (`workers.exclusion`) read it; the task watcher paces it
(`workers.running_watch`).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from workers.directory import Doc
from workers.octopus import Params
from workers.redis_client import as_text
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.watcher")

STATES = "Executing,Cancelling"
# One page: more deployments than this running at once in one space is far past a large Octopus.
TAKE = 1000
# A deployment's project, environment and tenant never change; kept a day, or the retention when that is
# shorter (a longer run reads it again).
PLACE_SECONDS = 24 * 3600
# Ids per `deployments?ids=` call, as the watcher's `tasks?ids=` (a URL of a few KB).
IDS_PER_CALL = 200


@dataclass(frozen=True)
class RunningDeployment:
    """A deployment task Octopus has in flight, where it deploys, and the task as read."""

    task_id: str
    deployment_id: str
    space_id: str
    project_id: str
    environment_id: str
    tenant_id: str | None
    task: Doc

    @property
    def waits_on_people(self) -> bool:
        return bool(self.task.get("HasPendingInterruptions"))

    @property
    def deploying(self) -> bool:
        """Acting on its targets: executing and not waiting on people, or still winding down from a cancel."""
        state = self.task.get("State")
        return state == "Cancelling" or (state == "Executing" and not self.waits_on_people)


def list_running(context: WorkerContext, space_id: str) -> list[RunningDeployment]:
    """Every deployment task executing (or cancelling) in the space, newest first."""
    client, _ = context.octopus_api()
    params: Params = {"spaces": space_id, "name": "Deploy", "states": STATES, "skip": 0, "take": TAKE}
    page = client.get("/api/tasks", params)
    tasks = [task for task in page["Items"] if task.get("Arguments", {}).get("DeploymentId")]
    if int(page.get("TotalResults") or 0) > TAKE:
        log.warning("more deployments run than one look reads", space=space_id, running=page["TotalResults"])
    places = DeploymentPlaces(context).of(space_id, [str(task["Arguments"]["DeploymentId"]) for task in tasks])
    running = []
    for task in tasks:
        deployment_id = str(task["Arguments"]["DeploymentId"])
        place = places.get(deployment_id)
        if place is None:
            continue  # gone from Octopus between the two reads: nothing to say about it
        project_id, environment_id, tenant_id = place
        running.append(
            RunningDeployment(
                task_id=str(task["Id"]),
                deployment_id=deployment_id,
                space_id=space_id,
                project_id=project_id,
                environment_id=environment_id,
                tenant_id=tenant_id,
                task=task,
            )
        )
    return running


Place = tuple[str, str, str | None]


class DeploymentPlaces:
    """Each deployment's project, environment and tenant, read from Octopus once and kept in Redis a day."""

    def __init__(self, context: WorkerContext) -> None:
        self._context = context

    def _key(self, deployment_id: str) -> str:
        return f"{self._context.keys.prefix}:deployment-place:{deployment_id}"

    def of(self, space_id: str, deployment_ids: list[str]) -> dict[str, Place]:
        if not deployment_ids:
            return {}
        connection = self._context.redis
        places: dict[str, Place] = {}
        for deployment_id, raw in zip(
            deployment_ids, connection.mget([self._key(item) for item in deployment_ids]), strict=True
        ):
            if raw is not None:
                project, environment, tenant = as_text(raw).split("|")
                places[deployment_id] = (project, environment, tenant or None)
        missing = [item for item in deployment_ids if item not in places]
        if missing:
            client, _ = self._context.octopus_api()
            found = []
            for start in range(0, len(missing), IDS_PER_CALL):
                chunk = missing[start : start + IDS_PER_CALL]
                params: Params = {"ids": ",".join(chunk), "skip": 0, "take": len(chunk)}
                found += client.get(f"/api/{space_id}/deployments", params)["Items"]
            with connection.pipeline(transaction=False) as pipe:
                for deployment in found:
                    place = (str(deployment["ProjectId"]), str(deployment["EnvironmentId"]), deployment.get("TenantId"))
                    places[str(deployment["Id"])] = place
                    keep = min(PLACE_SECONDS, self._context.retention.seconds)
                    pipe.set(self._key(str(deployment["Id"])), "|".join(p or "" for p in place), ex=keep)
                pipe.execute()
        return places
