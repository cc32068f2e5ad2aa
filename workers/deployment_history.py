"""Successful deployments of several projects to several environments, read once for several questions.

A promotion asks, for each of its components, what the destination runs now and what succeeded last in the
source environments: two `GET deployments` per component, asked within milliseconds of one another. Here one
list, `GET deployments?projects=<all>&environments=<all>&taskState=Success` (newest first, octopus-api.md
§2.10), answers them all: each question is a filtered view (project, environments, channel, tenant: the same
filters Octopus applies to the query it stands for), so it yields the deployments that query would have, in the
same order. Pages are read only as far as the question that looks deepest needs, and each page once.

Only for questions asked together: the list is as fresh as its first page. A plan that waits between its
steps reads again at each step (`workers.environment_release` without a history).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from workers.directory import Doc
from workers.octopus import OctopusClient


@dataclass
class SuccessfulDeployments:
    client: OctopusClient
    space_id: str
    project_ids: frozenset[str]
    environment_ids: frozenset[str]
    _read: list[Doc] = field(default_factory=list)
    _pages: Iterator[Doc] | None = None
    _exhausted: bool = False

    def covers(self, project_id: str, environment_ids: Sequence[str]) -> bool:
        return project_id in self.project_ids and set(environment_ids) <= self.environment_ids

    def of(
        self, *, project_id: str, environment_ids: Sequence[str], channel_id: str | None, tenant_id: str | None
    ) -> Iterator[Doc]:
        """What `GET deployments?projects=&environments=&channels=&tenants=&taskState=Success` lists, newest
        first (`None` filters nothing, as an absent parameter); reads further pages as the caller goes on."""
        if not self.covers(project_id, environment_ids):
            raise ValueError(f"{project_id} in {', '.join(environment_ids)} is outside what this history reads")
        wanted = set(environment_ids)
        index = 0
        while True:
            if index == len(self._read) and not self._read_one():
                return
            deployment = self._read[index]
            index += 1
            if (
                deployment["ProjectId"] == project_id
                and deployment["EnvironmentId"] in wanted
                and (channel_id is None or deployment.get("ChannelId") == channel_id)
                and (tenant_id is None or deployment.get("TenantId") == tenant_id)
            ):
                yield deployment

    def _read_one(self) -> bool:
        if self._exhausted:
            return False
        if self._pages is None:
            params = {
                "projects": ",".join(sorted(self.project_ids)),
                "environments": ",".join(sorted(self.environment_ids)),
                "taskState": "Success",
            }
            self._pages = self.client.items(f"/api/{self.space_id}/deployments", params)
        deployment = next(self._pages, None)
        if deployment is None:
            self._exhausted = True
            return False
        self._read.append(deployment)
        return True
