"""Names to Octopus documents, and the documents that rarely change, cached for a while.

Spaces, projects, channels, lifecycles, environments, tenants, teams, users and releases are looked up by the
rules' names or by id on every event; they change seldom, so each answer is kept for `ttl` seconds.
A lookup that misses (a renamed project, a new channel) drops the cached list and asks again before it
reports the name as unknown, so a change in Octopus is seen at once where it matters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workers.errors import PermanentError
from workers.octopus import OctopusClient

Doc = dict[str, Any]


class UnknownName(PermanentError):
    def __init__(self, kind: str, name: str, where: str) -> None:
        super().__init__(f"no {kind} named {name!r} in {where}")
        self.kind = kind
        self.name = name


class Directory:
    def __init__(self, client: OctopusClient, *, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}

    def forget(self) -> None:
        self._cache.clear()

    def space_id(self, name_or_id: str) -> str:
        if name_or_id.startswith("Spaces-"):
            return name_or_id
        return str(self._named("space", name_or_id, ("spaces",), "/api/spaces/all", "this Octopus")["Id"])

    def project(self, space_id: str, name: str) -> Doc:
        return self._named("project", name, ("projects", space_id), f"/api/{space_id}/projects/all", space_id)

    def project_by_id(self, space_id: str, project_id: str) -> Doc:
        return self._by_id(("projects", space_id), f"/api/{space_id}/projects/all", project_id)

    def environment(self, space_id: str, name: str) -> Doc:
        path = f"/api/{space_id}/environments/all"
        return self._named("environment", name, ("environments", space_id), path, space_id)

    def environment_by_id(self, space_id: str, environment_id: str) -> Doc:
        return self._by_id(("environments", space_id), f"/api/{space_id}/environments/all", environment_id)

    def tenant_by_id(self, space_id: str, tenant_id: str) -> Doc:
        return self._by_id(("tenants", space_id), f"/api/{space_id}/tenants/all", tenant_id)

    def channel(self, space_id: str, project: Doc, name: str) -> Doc:
        path = f"/api/{space_id}/projects/{project['Id']}/channels"
        key = ("channels", space_id, project["Id"])
        return self._named("channel", name, key, path, f"project {project['Name']}", paged=True)

    def default_channel(self, space_id: str, project: Doc) -> Doc:
        """The project's channel marked `IsDefault`."""
        path = f"/api/{space_id}/projects/{project['Id']}/channels"
        key = ("channels", space_id, project["Id"])
        for refresh in (False, True):
            for doc in self._list(key, path, paged=True, refresh=refresh):
                if doc.get("IsDefault"):
                    return doc
        raise UnknownName("channel", "(default)", f"project {project['Name']}")

    def lifecycle(self, space_id: str, lifecycle_id: str) -> Doc:
        """The lifecycle's preview, whose phases Octopus synthesizes when none are set (octopus-api.md §2.6)."""
        key = ("lifecycle", space_id, lifecycle_id)
        found = self._fresh(key)
        if found is None:
            found = self.client.get(f"/api/{space_id}/lifecycles/{lifecycle_id}/preview")
            self._cache[key] = (self._clock(), found)
        return found  # type: ignore[no-any-return]

    def release(self, space_id: str, release_id: str) -> Doc:
        """Releases do not change their version or channel, so they are kept for the cache's life."""
        key = ("release", space_id, release_id)
        found = self._fresh(key, forever=True)
        if found is None:
            found = self.client.get(f"/api/{space_id}/releases/{release_id}")
            self._cache[key] = (self._clock(), found)
        return found  # type: ignore[no-any-return]

    def user(self, user_id: str) -> Doc:
        key = ("user", user_id)
        found = self._fresh(key)
        if found is None:
            found = self.client.get(f"/api/users/{user_id}")
            self._cache[key] = (self._clock(), found)
        return found  # type: ignore[no-any-return]

    def _named(self, kind: str, name: str, key: tuple[str, ...], path: str, where: str, *, paged: bool = False) -> Doc:
        for refresh in (False, True):
            for doc in self._list(key, path, paged=paged, refresh=refresh):
                if str(doc.get("Name", "")).casefold() == name.casefold():
                    return doc
        raise UnknownName(kind, name, where)

    def _by_id(self, key: tuple[str, ...], path: str, doc_id: str) -> Doc:
        for refresh in (False, True):
            for doc in self._list(key, path, paged=False, refresh=refresh):
                if doc.get("Id") == doc_id:
                    return doc
        raise UnknownName(key[0].rstrip("s"), doc_id, path)

    def _list(self, key: tuple[str, ...], path: str, *, paged: bool, refresh: bool) -> list[Doc]:
        cached = None if refresh else self._fresh(key)
        if cached is None:
            cached = list(self.client.items(path)) if paged else list(self.client.get(path))
            self._cache[key] = (self._clock(), cached)
        return cached

    def _fresh(self, key: tuple[str, ...], *, forever: bool = False) -> Any:
        entry = self._cache.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if not forever and self._clock() - stored_at > self._ttl:
            return None
        return value
