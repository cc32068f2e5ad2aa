"""Names for the ids in a deployment report, through the cached directory; the id itself when Octopus cannot
say (not configured, unreachable, or the document is gone), so that a report is never lost to a name. Once
Octopus is found unreachable no more names are asked for: each would wait out the client's retries."""

from __future__ import annotations

from collections.abc import Callable

from workers.directory import Directory, Doc
from workers.errors import ConductorError, TransientError


class Names:
    def __init__(self, directory: Directory | None) -> None:
        self._directory = directory
        self._machines: dict[tuple[str, str], str] = {}

    def project(self, space_id: str, project_id: str) -> str:
        return self._name(project_id, lambda d: d.project_by_id(space_id, project_id), "Name")

    def release(self, space_id: str, release_id: str) -> str:
        return self._name(release_id, lambda d: d.release(space_id, release_id), "Version")

    def environment(self, space_id: str, environment_id: str) -> str:
        return self._name(environment_id, lambda d: d.environment_by_id(space_id, environment_id), "Name")

    def tenant(self, space_id: str, tenant_id: object) -> str | None:
        if not tenant_id:
            return None
        return self._name(str(tenant_id), lambda d: d.tenant_by_id(space_id, str(tenant_id)), "Name")

    def machine(self, space_id: str, machine_id: str) -> str:
        """Machines are not in the directory's cache: each is read once per report."""
        key = (space_id, machine_id)
        if key not in self._machines:
            path = f"/api/{space_id}/machines/{machine_id}"
            self._machines[key] = self._name(machine_id, lambda d: d.client.get(path), "Name")
        return self._machines[key]

    def _name(self, doc_id: str, look_up: Callable[[Directory], Doc], field: str) -> str:
        if self._directory is None or not doc_id:
            return doc_id
        try:
            return str(look_up(self._directory).get(field) or doc_id)
        except TransientError:
            self._directory = None
            return doc_id
        except ConductorError:
            return doc_id
