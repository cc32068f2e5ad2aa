"""Names to Octopus documents, and the documents that rarely change, cached for a while.

Spaces, projects, processes, channels, lifecycles, environments, tenants, teams, users and releases are looked
up by the rules' names or by id on every event; they change seldom, so each answer is kept for `ttl` seconds.
An answer that contradicts the cache drops what it contradicts at once, without waiting for that age:
- a lookup that misses (a renamed project, a new channel) drops the cached list and asks again before it
  reports the name as unknown;
- a 404 from Octopus, whoever asked (the client tells `forget_path`), drops every cached answer that holds
  an id of that path, so that the next lookup by name finds what now carries it;
- a process read with another `Version` than the cached one (`saw_process`) replaces it.
Octopus's document-modified event categories are not relied on: they are not confirmed (octopus-api.md §1.5).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from workers.errors import PermanentError
from workers.octopus import OctopusClient

Doc = dict[str, Any]
# An Octopus id in a path segment: `Projects-5`, `Channels-12`, inside `deploymentprocess-Projects-5` too.
_ID = re.compile(r"[A-Za-z]+-\d+")


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
        client.not_found_listeners.append(self.forget_path)

    def forget(self) -> None:
        self._cache.clear()

    def forget_ids(self, ids: Iterable[str]) -> int:
        """Drop every cached answer that holds one of `ids` (Octopus said 404 for it); returns how many."""
        gone = set(ids)
        stale = [key for key, (_, value) in self._cache.items() if gone & (set(key) | _ids_in(value))]
        for key in stale:
            del self._cache[key]
        return len(stale)

    def forget_path(self, path: str) -> int:
        """A 404 for `path`: forget the ids it names. The space it is in stays, unless the space is what was
        not found."""
        segments = [part for part in path.strip("/").split("/") if _ID.search(part)]
        ids = {part for part in segments if not part.startswith("Spaces-") or part == segments[-1]}
        ids |= {found for part in ids for found in _ID.findall(part) if not found.startswith("Spaces-")}
        return self.forget_ids(ids)

    def process(self, space_id: str, process_id: str) -> Doc:
        """A project's deployment process (steps, roles, responsible teams)."""
        key = ("process", space_id, process_id)
        found = self._fresh(key)
        if found is None:
            found = self.client.get(f"/api/{space_id}/deploymentprocesses/{process_id}")
            self._cache[key] = (self._clock(), found)
        return found  # type: ignore[no-any-return]

    def saw_process(self, space_id: str, process: Doc) -> bool:
        """A process read by someone else: replace the cached one if its `Version` differs; True if it did."""
        key = ("process", space_id, str(process.get("Id")))
        cached = self._fresh(key)
        if cached is not None and cached.get("Version") == process.get("Version"):
            return False
        changed = cached is not None
        self._cache[key] = (self._clock(), process)
        return changed

    def team(self, team_id: str) -> Doc:
        key = ("team", team_id)
        found = self._fresh(key)
        if found is None:
            found = self.client.get(f"/api/teams/{team_id}")
            self._cache[key] = (self._clock(), found)
        return found  # type: ignore[no-any-return]

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

    def tenant(self, space_id: str, name: str) -> Doc:
        return self._named("tenant", name, ("tenants", space_id), f"/api/{space_id}/tenants/all", space_id)

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


def _ids_in(value: Any) -> set[str]:
    """The ids of a cached answer: a document's `Id`, or those of a list's documents."""
    docs = value if isinstance(value, list) else [value]
    return {str(doc.get("Id")) for doc in docs if isinstance(doc, dict) and doc.get("Id")}
