"""Lifecycles and phases: which environments a release may be deployed to next."""

from __future__ import annotations

from simulator.store import Doc, Store, TenantKey


def lifecycle_id_for_release(store: Store, release: Doc) -> str:
    """A channel with no lifecycle inherits the project's."""
    channel = store.channels.get(release["ChannelId"])
    if channel and channel.get("LifecycleId"):
        return str(channel["LifecycleId"])
    return str(store.projects[release["ProjectId"]]["LifecycleId"])


def phases(store: Store, lifecycle: Doc) -> list[Doc]:
    """The lifecycle's phases; with none defined, one optional phase per environment (as /preview shows)."""
    if lifecycle["Phases"]:
        return list(lifecycle["Phases"])
    envs = sorted(
        (e for e in store.environments.values() if e["SpaceId"] == lifecycle["SpaceId"]),
        key=lambda e: (e["SortOrder"], e["Id"]),
    )
    return [
        {
            "Id": f"{lifecycle['Id']}-{env['Id']}",
            "Name": env["Name"],
            "AutomaticDeploymentTargets": [],
            "OptionalDeploymentTargets": [env["Id"]],
            "MinimumEnvironmentsBeforePromotion": 0,
            "IsOptionalPhase": True,
            "IsPriorityPhase": False,
            "ReleaseRetentionPolicy": None,
            "TentacleRetentionPolicy": None,
        }
        for env in envs
    ]


def phase_environments(phase: Doc) -> list[str]:
    return list(dict.fromkeys([*phase["AutomaticDeploymentTargets"], *phase["OptionalDeploymentTargets"]]))


def lifecycle_environments(store: Store, lifecycle: Doc) -> list[str]:
    found: list[str] = []
    for phase in phases(store, lifecycle):
        found.extend(e for e in phase_environments(phase) if e not in found)
    return found


def allowed_environments(store: Store, release: Doc, tenant_id: TenantKey) -> list[str]:
    """Environments the release can go to now: every phase up to and including the first unfinished
    required one. For a tenant, only the environments it is connected to count (inferred)."""
    lifecycle = store.lifecycles[lifecycle_id_for_release(store, release)]
    done = store.release_progress.get((release["Id"], tenant_id), set())
    connected: set[str] | None = None
    if tenant_id is not None:
        tenant = store.tenants.get(tenant_id)
        connected = set((tenant or {}).get("ProjectEnvironments", {}).get(release["ProjectId"], []))
    allowed: list[str] = []
    for phase in phases(store, lifecycle):
        envs = phase_environments(phase)
        if connected is not None:
            envs = [e for e in envs if e in connected]
            if not envs:
                continue
        allowed.extend(e for e in envs if e not in allowed)
        if phase["IsOptionalPhase"]:
            continue
        minimum = int(phase.get("MinimumEnvironmentsBeforePromotion") or 0)
        finished = sum(1 for e in envs if e in done)
        complete = finished >= minimum if minimum > 0 else finished == len(envs)
        if not complete:
            break
    return allowed
