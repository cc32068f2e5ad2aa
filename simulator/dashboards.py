"""What is deployed where: dashboard items, the project dashboard and project progression.

For each project, environment and tenant the *current* deployment is the newest one (whatever its
state) and the *previous* one is the newest successful deployment before it."""

from __future__ import annotations

from simulator.lifecycle import allowed_environments, lifecycle_environments
from simulator.store import Doc, Store, TenantKey

Key = tuple[str, str, TenantKey]


def current_and_previous(store: Store, key: Key) -> tuple[str | None, str | None]:
    history = store.deployment_history.get(key) or []
    if not history:
        return None, None
    current = history[-1]
    for deployment_id in reversed(history[:-1]):
        if store.tasks[store.deployments[deployment_id]["TaskId"]]["State"] == "Success":
            return current, deployment_id
    return current, None


def dashboard_item(store: Store, deployment: Doc, *, is_current: bool, is_previous: bool) -> Doc:
    task = store.tasks[deployment["TaskId"]]
    release = store.releases[deployment["ReleaseId"]]
    return {
        "Id": deployment["Id"],
        "ProjectId": deployment["ProjectId"],
        "EnvironmentId": deployment["EnvironmentId"],
        "ReleaseId": deployment["ReleaseId"],
        "DeploymentId": deployment["Id"],
        "TaskId": deployment["TaskId"],
        "TenantId": deployment.get("TenantId"),
        "ChannelId": deployment["ChannelId"],
        "ReleaseVersion": release["Version"],
        "Created": deployment["Created"],
        "QueueTime": task["QueueTime"],
        "StartTime": task["StartTime"],
        "CompletedTime": task["CompletedTime"],
        "State": task["State"],
        "HasPendingInterruptions": task["HasPendingInterruptions"],
        "PendingInterruptionTypes": task["PendingInterruptionTypes"],
        "HasWarningsOrErrors": task["HasWarningsOrErrors"],
        "ErrorMessage": task["ErrorMessage"],
        "Duration": task["Duration"],
        "IsCurrent": is_current,
        "IsPrevious": is_previous,
        "IsCompleted": task["IsCompleted"],
    }


def _keys_for_project(store: Store, project_id: str) -> list[Key]:
    return [key for key in store.deployment_history if key[0] == project_id]


def dashboard(
    store: Store,
    space_id: str,
    *,
    project_ids: list[str],
    environment_ids: list[str],
    tenant_ids: list[str],
    include_previous: bool = True,
) -> Doc:
    projects = [
        p for p in store.projects.values() if p["SpaceId"] == space_id and (not project_ids or p["Id"] in project_ids)
    ]
    environments = sorted(
        (
            e
            for e in store.environments.values()
            if e["SpaceId"] == space_id and (not environment_ids or e["Id"] in environment_ids)
        ),
        key=lambda e: (e["SortOrder"], e["Id"]),
    )
    env_set = {e["Id"] for e in environments}
    items: list[Doc] = []
    previous_items: list[Doc] = []
    for project in projects:
        for key in _keys_for_project(store, project["Id"]):
            if key[1] not in env_set or (tenant_ids and key[2] not in tenant_ids):
                continue
            current, previous = current_and_previous(store, key)
            if current:
                items.append(dashboard_item(store, store.deployments[current], is_current=True, is_previous=False))
            if previous and include_previous:
                previous_items.append(
                    dashboard_item(store, store.deployments[previous], is_current=False, is_previous=True)
                )
    groups = {p["ProjectGroupId"] for p in projects}
    return {
        "Projects": [
            {
                "Id": p["Id"],
                "Name": p["Name"],
                "Slug": p["Slug"],
                "ProjectGroupId": p["ProjectGroupId"],
                "EnvironmentIds": lifecycle_environments(store, store.lifecycles[p["LifecycleId"]]),
                "TenantedDeploymentMode": p["TenantedDeploymentMode"],
                "CanPerformUntenantedDeployment": p["TenantedDeploymentMode"] != "Tenanted",
                "IsDisabled": p["IsDisabled"],
                "Links": {"Self": p["Links"]["Self"]},
            }
            for p in projects
        ],
        "ProjectGroups": [
            {
                "Id": g["Id"],
                "Name": g["Name"],
                "EnvironmentIds": sorted(env_set),
                "Links": {"Self": g["Links"]["Self"]},
            }
            for g in store.project_groups.values()
            if g["Id"] in groups
        ],
        "Environments": [
            {"Id": e["Id"], "Name": e["Name"], "Links": {"Self": e["Links"]["Self"]}} for e in environments
        ],
        "Tenants": [
            {
                "Id": t["Id"],
                "Name": t["Name"],
                "ProjectEnvironments": t["ProjectEnvironments"],
                "TenantTags": t["TenantTags"],
                "Links": {"Self": t["Links"]["Self"]},
            }
            for t in store.tenants.values()
            if t["SpaceId"] == space_id
        ],
        "Items": items,
        "PreviousItems": previous_items if include_previous else None,
        "ProjectLimit": None,
        "IsFiltered": bool(project_ids or environment_ids or tenant_ids),
        "Links": {},
    }


def _named(store: Store, env_ids: list[str]) -> list[Doc]:
    return [{"Id": e, "Name": store.environments[e]["Name"]} for e in env_ids]


def progression(store: Store, project: Doc, release_history_count: int | None = None) -> Doc:
    """ProgressionResource: per release (newest first), per environment, the latest deployment of that
    release for each tenant (untenanted counts as one), marked current/previous as on the dashboard."""
    project_id = project["Id"]
    channels = [c for c in store.channels.values() if c["ProjectId"] == project_id]
    lifecycle_of = {
        c["Id"]: lifecycle_environments(store, store.lifecycles[c["LifecycleId"] or project["LifecycleId"]])
        for c in channels
    }
    all_envs: list[str] = []
    for envs in lifecycle_of.values():
        all_envs.extend(e for e in envs if e not in all_envs)
    all_envs.sort(key=lambda e: (store.environments[e]["SortOrder"], e))
    flags: dict[str, tuple[bool, bool]] = {}
    latest: dict[tuple[str, str, TenantKey], str] = {}
    for key in _keys_for_project(store, project_id):
        current, previous = current_and_previous(store, key)
        if current:
            flags[current] = (True, False)
        if previous:
            flags[previous] = (False, True)
        for deployment_id in store.deployment_history[key]:
            deployment = store.deployments[deployment_id]
            latest[(deployment["ReleaseId"], key[1], key[2])] = deployment_id
    per_release: dict[str, dict[str, list[Doc]]] = {}
    for (release_id, env_id, _tenant), deployment_id in latest.items():
        is_current, is_previous = flags.get(deployment_id, (False, False))
        item = dashboard_item(store, store.deployments[deployment_id], is_current=is_current, is_previous=is_previous)
        per_release.setdefault(release_id, {}).setdefault(env_id, []).append(item)
    releases = sorted(
        (r for r in store.releases.values() if r["ProjectId"] == project_id),
        key=lambda r: (r["Assembled"], int(r["Id"].split("-")[1])),
        reverse=True,
    )
    if release_history_count:
        releases = releases[:release_history_count]
    channel_by_id = {c["Id"]: c for c in channels}
    return {
        "Environments": _named(store, all_envs),
        "ChannelEnvironments": {cid: _named(store, envs) for cid, envs in lifecycle_of.items()},
        "LifecycleEnvironments": {
            c["LifecycleId"] or project["LifecycleId"]: _named(store, lifecycle_of[c["Id"]]) for c in channels
        },
        "Releases": [
            {
                "Release": release,
                "Channel": {
                    "Id": release["ChannelId"],
                    "Name": channel_by_id[release["ChannelId"]]["Name"],
                    "IsDefault": channel_by_id[release["ChannelId"]]["IsDefault"],
                },
                "Deployments": per_release.get(release["Id"], {}),
                # Untenanted promotion targets the release has not reached yet.
                "NextDeployments": [
                    e
                    for e in allowed_environments(store, release, None)
                    if e not in store.release_progress.get((release["Id"], None), set())
                ],
                "HasUnresolvedDefect": False,
                "ReleaseRetentionPeriod": None,
                "TentacleRetentionPeriod": None,
            }
            for release in releases
        ],
        "Links": {},
    }
