"""The release an environment (and tenant) runs for one component, and which of some machines have it.

The release is that of the newest successful deployment to the whole environment within the component's
channel (filtered by Octopus: `channels=`) and release pattern. Partial deployments (`SpecificMachineIds`
non-empty, the conductor's own among them) do not choose it while a deployment to the whole environment
exists: a redeploy of an old release to one machine does not make that release the environment's. They
still tell which machines already have a release: a machine has the release its newest successful
deployment brought it.

The list (newest first) is read page after page as far as needed: until every machine asked about has been
seen, or the deployments are older than the chosen release itself (none of those can have brought it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from workers.deployment_history import SuccessfulDeployments
from workers.directory import Directory, Doc
from workers.octopus import OctopusClient
from workers.rules import ComponentRule


@dataclass(frozen=True)
class EnvironmentRelease:
    deployment: Doc
    release: Doc
    have_it: set[str] = field(default_factory=set)


def environment_release(
    client: OctopusClient,
    directory: Directory,
    *,
    space_id: str,
    project: Doc,
    environment_id: str,
    tenant_id: str | None,
    channel_id: str | None,
    component: ComponentRule,
    machine_ids: list[str],
    history: SuccessfulDeployments | None = None,
) -> EnvironmentRelease | None:
    """None when no successful deployment within the channel and pattern exists there. With a `history` that
    covers the project and environment, its list is read instead of a query of its own."""
    params = {
        "projects": project["Id"],
        "environments": environment_id,
        "tenants": tenant_id,
        "channels": channel_id,
        "taskState": "Success",
    }
    whole: tuple[Doc, Doc] | None = None
    partial: tuple[Doc, Doc] | None = None
    release_of: dict[str, str] = {}  # machine → the release its newest successful deployment brought
    wanted = set(machine_ids)
    listed: Iterator[Doc]
    if history is not None and history.covers(project["Id"], [environment_id]):
        listed = history.of(
            project_id=project["Id"], environment_ids=[environment_id], channel_id=channel_id, tenant_id=tenant_id
        )
    else:
        listed = client.items(f"/api/{space_id}/deployments", params)
    for deployment in listed:
        if deployment.get("TenantId") != tenant_id:
            continue  # an untenanted query lists tenanted deployments too
        for machine in deployment.get("DeployedToMachineIds") or []:
            release_of.setdefault(machine, deployment["ReleaseId"])
        if whole is None:
            is_partial = bool(deployment.get("SpecificMachineIds"))
            if is_partial and partial is not None:
                continue
            release = directory.release(space_id, deployment["ReleaseId"])
            if not component.matches_version(release["Version"]):
                continue
            if is_partial:
                partial = (deployment, release)
                continue
            whole = (deployment, release)
        if wanted <= release_of.keys() or _older(deployment, than=whole[1]):
            break
    chosen = whole or partial
    if chosen is None:
        return None
    have_it = {machine for machine in wanted if release_of.get(machine) == chosen[1]["Id"]}
    return EnvironmentRelease(deployment=chosen[0], release=chosen[1], have_it=have_it)


def _older(deployment: Doc, *, than: Doc) -> bool:
    created, assembled = parse_time(deployment.get("Created")), parse_time(than.get("Assembled"))
    return created is not None and assembled is not None and created < assembled


def parse_time(value: object) -> datetime | None:
    """An Octopus date (ISO 8601 with offset); None when absent or unreadable, so that no bound is applied."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # .NET writes up to 7 fractional digits; Python reads at most 6
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
