"""The `Changes` of a deployment preview or deployment: the releases between what the environment (and
tenant) runs and the release being deployed, each with its notes, work items, commits and packages."""

from __future__ import annotations

from simulator.store import Doc, Store, TenantKey

_PACKAGE_FIELDS = ("PackageId", "Version", "BuildNumber", "BuildUrl", "VcsType", "VcsRoot", "VcsCommitNumber")


def _release_order(release: Doc) -> tuple[str, int]:
    return release["Assembled"], int(release["Id"].split("-")[1])


def deployed_release(store: Store, project_id: str, environment_id: str, tenant_id: TenantKey) -> Doc | None:
    """The release of the newest successful deployment for the project, environment and tenant."""
    for deployment_id in reversed(store.deployment_history.get((project_id, environment_id, tenant_id)) or []):
        deployment = store.deployments[deployment_id]
        if store.tasks[deployment["TaskId"]]["State"] == "Success":
            return store.releases[deployment["ReleaseId"]]
    return None


def _unique(items: list[Doc]) -> list[Doc]:
    seen: dict[str, Doc] = {}
    for item in items:
        seen.setdefault(str(item["Id"]), item)
    return list(seen.values())


def release_change(release: Doc) -> Doc:
    """ReleaseChanges for one release."""
    build = release.get("BuildInformation") or []
    return {
        "Version": release["Version"],
        "ReleaseNotes": release.get("ReleaseNotes") or "",
        "WorkItems": _unique([w for b in build for w in b.get("WorkItems") or []]),
        "Commits": _unique([c for b in build for c in b.get("Commits") or []]),
        "BuildInformation": [{key: b.get(key) for key in _PACKAGE_FIELDS} for b in build],
    }


def changes(store: Store, release: Doc, environment_id: str, tenant_id: TenantKey) -> list[Doc]:
    """Oldest first: every release of the channel after the deployed one, up to this one. Nothing
    deployed yet, a redeploy or a rollback: this release alone (the simulator's choice)."""
    current = deployed_release(store, release["ProjectId"], environment_id, tenant_id)
    if current is None or _release_order(current) >= _release_order(release):
        return [release_change(release)]
    between = [
        r
        for r in store.releases.values()
        if r["ChannelId"] == release["ChannelId"]
        and _release_order(current) < _release_order(r) <= _release_order(release)
    ]
    return [release_change(r) for r in sorted(between, key=_release_order)]


def changes_markdown(items: list[Doc]) -> str:
    """The simulator's rendering (Octopus renders the project's DeploymentChangesTemplate)."""
    blocks = []
    for change in items:
        lines = [f"## {change['Version']}", ""]
        if change["ReleaseNotes"]:
            lines += [change["ReleaseNotes"], ""]
        if change["WorkItems"]:
            items = change["WorkItems"]
            lines += ["Work items:", *(f"- [{w['Id']}]({w['LinkUrl']}): {w['Description']}" for w in items)]
            lines.append("")
        if change["Commits"]:
            lines += ["Commits:", *(f"- [{c['Id'][:7]}]({c['LinkUrl']}): {c['Comment']}" for c in change["Commits"])]
            lines.append("")
        if change["BuildInformation"]:
            lines += ["Packages:", *(f"- {b['PackageId']} {b['Version']}" for b in change["BuildInformation"]), ""]
        blocks.append("\n".join(lines).rstrip())
    return "\n\n".join(blocks)
