"""A component that lives in a space of its own (rules `space:` per component).

Octopus ids are per space: the destination environment and the tenant of a promotion are the orchestration's
(the parent deployment's, or the ones named on demand), so in the component's space they are the documents of
the same name (octopus-api.md §2.1). An environment that has no namesake there is an unknown name
(`workers.directory.UnknownName`), and the component cannot be planned; a tenant that has none is reported as
missing, so that a component that deploys untenanted anyway is not held up by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory import Directory, Doc, UnknownName
from workers.rules import ComponentRule, Orchestration


@dataclass(frozen=True)
class ComponentPlace:
    space_id: str  # the component's space
    environment: Doc  # the destination, in the component's space
    tenant_id: str | None  # the tenant, in the component's space
    missing_tenant: str | None = None  # the tenant's name, when the component's space has no tenant of that name

    def moved(self, orchestration_space_id: str) -> bool:
        """Whether the component lives in another space than the orchestration."""
        return self.space_id != orchestration_space_id


def place_of(
    directory: Directory,
    orchestration: Orchestration,
    component: ComponentRule,
    *,
    space_id: str,
    environment: Doc,
    tenant_id: str | None,
) -> ComponentPlace:
    """Where the component deploys: the orchestration's `environment` and `tenant_id` (of `space_id`) matched by
    name in the component's own space. Raises UnknownName for a space or an environment it does not have."""
    component_space = directory.space_id(orchestration.space_of(component))
    if component_space == space_id:
        return ComponentPlace(space_id=space_id, environment=environment, tenant_id=tenant_id)
    try:
        there = directory.environment(component_space, str(environment["Name"]))
    except UnknownName:
        where = f"space {orchestration.space_of(component)}, where {component.project} lives"
        raise UnknownName("environment", str(environment["Name"]), where) from None
    if tenant_id is None:
        return ComponentPlace(space_id=component_space, environment=there, tenant_id=None)
    tenant_name = str(directory.tenant_by_id(space_id, tenant_id)["Name"])
    try:
        tenant = directory.tenant(component_space, tenant_name)
    except UnknownName:
        return ComponentPlace(space_id=component_space, environment=there, tenant_id=None, missing_tenant=tenant_name)
    return ComponentPlace(space_id=component_space, environment=there, tenant_id=str(tenant["Id"]))
