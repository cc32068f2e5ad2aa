"""Which plans a new machine joins: whether it can be deployed to, and its (environment, tenant) pairs."""

from __future__ import annotations

from workers.directory import Doc
from workers.octopus import OctopusClient

UNDEPLOYABLE_HEALTH = frozenset({"Unhealthy", "Unavailable"})


def why_not_deployable(machine: Doc) -> str | None:
    if machine.get("IsDisabled"):
        return f"{machine['Name']} is disabled"
    if machine.get("HealthStatus") in UNDEPLOYABLE_HEALTH:
        return f"{machine['Name']} is {machine['HealthStatus']}"
    return None


def groups_of(client: OctopusClient, space_id: str, machine: Doc) -> list[tuple[str, str | None]]:
    """(environment, tenant) pairs a machine can be deployed to, by its tenanted participation: the tenants
    it names, and those its tenant tags match (octopus-api.md §8.3: Octopus resolves the tags)."""
    participation = machine.get("TenantedDeploymentParticipation")
    tags: list[str] = list(machine.get("TenantTags") or [])
    tenants: list[str] = list(machine.get("TenantIds") or [])
    if participation is None:  # servers older than the field: derived as the .NET client does
        participation = "Tenanted" if tenants or tags else "Untenanted"
    options: list[str | None] = []
    if participation in ("Untenanted", "TenantedOrUntenanted"):
        options.append(None)
    if participation in ("Tenanted", "TenantedOrUntenanted"):
        if tags:
            tagged = client.items(f"/api/{space_id}/tenants", {"tags": ",".join(tags)})
            tenants += [t["Id"] for t in tagged if t["Id"] not in tenants and not t.get("IsDisabled")]
        options.extend(tenants)
    return [(environment, tenant) for environment in machine.get("EnvironmentIds", []) for tenant in options]
