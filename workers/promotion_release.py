"""Finding one component's release for a promotion: in its channel, matching its pattern, allowed to go to the
destination (and tenant), and what the destination runs now (octopus-api.md §3.4, §3.5)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from workers.deployment_history import SuccessfulDeployments
from workers.directory import Directory, Doc
from workers.environment_release import EnvironmentRelease, environment_release
from workers.octopus import OctopusClient
from workers.release_pattern import version_matches
from workers.rules import ComponentRule

_WILDCARDS = re.compile(r"\[[^\]]*\]|[*?\[\]]")


@dataclass
class ReleaseSearch:
    client: OctopusClient
    directory: Directory
    space_id: str
    project: Doc
    channel_id: str
    pattern: str | None  # a plain wildcard, already derived from the parent's version
    destination_id: str
    tenant_id: str | None
    history: SuccessfulDeployments | None = None  # read for every component of the promotion at once
    _may_go: dict[str, bool] = field(default_factory=dict)

    def newest_in_channel(self) -> Doc | None:
        """The channel's newest release that matches the pattern and may go to the destination."""
        search = search_text(self.pattern)
        params = {"searchByVersion": search} if search else None
        path = f"/api/{self.space_id}/channels/{self.channel_id}/releases"
        for release in self.client.items(path, params):
            if version_matches(release["Version"], self.pattern) and self.may_go(release):
                return release  # type: ignore[no-any-return]
        return None

    def newest_succeeded(self, environment_ids: Sequence[str], *, tenant_id: str | None) -> tuple[Doc, str] | None:
        """The release of the newest successful deployment to one of the environments (within the channel)
        that matches the pattern and may go to the destination; with the environment it succeeded in."""
        params = {
            "projects": self.project["Id"],
            "environments": ",".join(environment_ids),
            "channels": self.channel_id,
            "tenants": tenant_id,
            "taskState": "Success",
        }
        listed: Iterator[Doc]
        if self.history is not None and self.history.covers(self.project["Id"], environment_ids):
            listed = self.history.of(
                project_id=self.project["Id"],
                environment_ids=environment_ids,
                channel_id=self.channel_id,
                tenant_id=tenant_id,
            )
        else:
            listed = self.client.items(f"/api/{self.space_id}/deployments", params)
        seen: set[str] = set()
        for deployment in listed:
            release_id = deployment["ReleaseId"]
            if release_id in seen:
                continue
            seen.add(release_id)
            release = self.directory.release(self.space_id, release_id)
            if version_matches(release["Version"], self.pattern) and self.may_go(release):
                return release, str(deployment["EnvironmentId"])
        return None

    def may_go(self, release: Doc) -> bool:
        """The deployment template's PromoteTo holds the destination; for a tenant, its own PromoteTo does."""
        if release["Id"] not in self._may_go:
            template = self.client.get(f"/api/{self.space_id}/releases/{release['Id']}/deployments/template")
            targets = template.get("PromoteTo") or []
            by_tenant = template.get("TenantPromotions") or []
            if self.tenant_id is not None and by_tenant:
                tenant: Doc = next((item for item in by_tenant if item.get("Id") == self.tenant_id), {})
                targets = tenant.get("PromoteTo") or []
            self._may_go[release["Id"]] = any(target.get("Id") == self.destination_id for target in targets)
        return self._may_go[release["Id"]]

    def running_now(self, *, channel_id: str | None) -> Doc | None:
        """The release the destination (and tenant) runs now: its newest successful whole deployment."""
        found = self.current(channel_id=channel_id)
        return None if found is None else found.release

    def current(self, *, channel_id: str | None) -> EnvironmentRelease | None:
        """What the destination (and tenant) runs now, with the deployment that put it there."""
        return environment_release(
            self.client,
            self.directory,
            space_id=self.space_id,
            project=self.project,
            environment_id=self.destination_id,
            tenant_id=self.tenant_id,
            channel_id=channel_id,
            component=ComponentRule(project=self.project["Name"]),
            machine_ids=[],
            history=self.history,
        )

    def preview(self, release: Doc) -> Doc:
        """The deployment preview to the destination (and tenant): its Form and its Changes."""
        path = f"/api/{self.space_id}/releases/{release['Id']}/deployments/preview/{self.destination_id}"
        found: Doc = self.client.get(path + (f"/{self.tenant_id}" if self.tenant_id else ""))
        return found


def search_text(pattern: str | None) -> str | None:
    """The longest literal run of a wildcard: what Octopus's substring filter `searchByVersion` can use."""
    if not pattern:
        return None
    longest = max(_WILDCARDS.split(pattern), key=len)
    return longest or None
