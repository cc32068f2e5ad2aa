"""Environments, machines (deployment targets) and tenants."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.errors import bad_request
from simulator.infrastructure import (
    create_environment,
    create_machine,
    create_tenant,
    delete_machine,
    update_machine,
    update_tenant,
)
from simulator.paging import bool_param, collection, list_param
from simulator.routes.common import allow, body, named_filter, ok, path_param, space_id, store
from simulator.store import Doc, get_doc, in_space
from simulator.tenant_tags import matches
from simulator.validation import body_object, optional_bool, optional_str


def _environments(request: Request) -> list[Doc]:
    envs = named_filter(request, in_space(store(request).environments, space_id(request)))
    return sorted(envs, key=lambda e: (e["SortOrder"], int(e["Id"].split("-")[1])))


async def list_environments(request: Request) -> Response:
    return ok(collection(request, _environments(request), "Environment"))


async def all_environments(request: Request) -> Response:
    return ok(_environments(request))


async def get_environment(request: Request) -> Response:
    return ok(get_doc(store(request).environments, path_param(request, "id"), space_id(request)))


async def post_environment(request: Request) -> Response:
    user = allow(request, "EnvironmentCreate")
    return ok(create_environment(store(request), space_id(request), await body(request), user), 201)


async def put_environment(request: Request) -> Response:
    allow(request, "EnvironmentEdit")
    env = get_doc(store(request).environments, path_param(request, "id"), space_id(request))
    data = body_object(await body(request))
    if "UseGuidedFailure" in data:
        env["UseGuidedFailure"] = optional_bool(data, "UseGuidedFailure", False)
    if "Description" in data:
        env["Description"] = optional_str(data, "Description") or ""
    if isinstance(data.get("SortOrder"), int):
        env["SortOrder"] = data["SortOrder"]
    return ok(env)


def _machines(request: Request, environment_id: str | None = None) -> list[Doc]:
    """Machine list filters: roles, environmentIds, tenantIds, healthStatuses, isDisabled, deploymentId."""
    s = store(request)
    roles = set(list_param(request, "roles"))
    envs = set(list_param(request, "environmentIds"))
    if environment_id:
        envs = {environment_id}
    tenants = set(list_param(request, "tenantIds"))
    health = set(list_param(request, "healthStatuses"))
    disabled = request.query_params.get("isDisabled")
    deployment_id = request.query_params.get("deploymentId")
    deployed = set(s.deployments[deployment_id]["DeployedToMachineIds"]) if deployment_id in s.deployments else None
    thumbprint = request.query_params.get("thumbprint")
    found = []
    for machine in named_filter(request, in_space(s.machines, space_id(request))):
        if roles and not roles.intersection(machine["Roles"]):
            continue
        if envs and not envs.intersection(machine["EnvironmentIds"]):
            continue
        if tenants and not tenants.intersection(machine["TenantIds"]):
            continue
        if health and machine["HealthStatus"] not in health:
            continue
        if disabled not in (None, "") and machine["IsDisabled"] != bool_param(request, "isDisabled"):
            continue
        if deployed is not None and machine["Id"] not in deployed:
            continue
        if thumbprint and machine.get("Thumbprint") != thumbprint:
            continue
        found.append(machine)
    return found


async def list_machines(request: Request) -> Response:
    return ok(collection(request, _machines(request), "DeploymentTarget"))


async def all_machines(request: Request) -> Response:
    return ok(_machines(request))


async def environment_machines(request: Request) -> Response:
    env = get_doc(store(request).environments, path_param(request, "id"), space_id(request))
    return ok(collection(request, _machines(request, env["Id"]), "DeploymentTarget"))


async def get_machine(request: Request) -> Response:
    return ok(get_doc(store(request).machines, path_param(request, "id"), space_id(request)))


async def post_machine(request: Request) -> Response:
    user = allow(request, "MachineCreate")
    return ok(create_machine(store(request), space_id(request), await body(request), user), 201)


async def put_machine(request: Request) -> Response:
    user = allow(request, "MachineEdit")
    machine = get_doc(store(request).machines, path_param(request, "id"), space_id(request))
    return ok(update_machine(store(request), machine, await body(request), user))


async def remove_machine(request: Request) -> Response:
    user = allow(request, "MachineDelete")
    machine = get_doc(store(request).machines, path_param(request, "id"), space_id(request))
    delete_machine(store(request), machine, user)
    return ok({})


def _tenants(request: Request) -> list[Doc]:
    """Tenant list filters: ids, name, partialName, projectId and tags (canonical names, see tenant_tags)."""
    tenants = named_filter(request, in_space(store(request).tenants, space_id(request)))
    project_id = request.query_params.get("projectId")
    if project_id:
        tenants = [t for t in tenants if project_id in t["ProjectEnvironments"]]
    tags = list_param(request, "tags")
    if tags:
        tenants = [t for t in tenants if matches(tags, t["TenantTags"])]
    return tenants


async def list_tenants(request: Request) -> Response:
    return ok(collection(request, _tenants(request), "Tenant"))


async def all_tenants(request: Request) -> Response:
    return ok(_tenants(request))


async def get_tenant(request: Request) -> Response:
    return ok(get_doc(store(request).tenants, path_param(request, "id"), space_id(request)))


async def post_tenant(request: Request) -> Response:
    user = allow(request, "TenantCreate")
    return ok(create_tenant(store(request), space_id(request), await body(request), user), 201)


async def put_tenant(request: Request) -> Response:
    allow(request, "TenantEdit")
    tenant = get_doc(store(request).tenants, path_param(request, "id"), space_id(request))
    data = await body(request)
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return ok(update_tenant(store(request), tenant, data))


routes = [
    Route("/api/environments", list_environments),
    Route("/api/environments", post_environment, methods=["POST"]),
    Route("/api/environments/all", all_environments),
    Route("/api/environments/{id}", get_environment),
    Route("/api/environments/{id}", put_environment, methods=["PUT"]),
    Route("/api/environments/{id}/machines", environment_machines),
    Route("/api/machines", list_machines),
    Route("/api/machines", post_machine, methods=["POST"]),
    Route("/api/machines/all", all_machines),
    Route("/api/machines/{id}", get_machine),
    Route("/api/machines/{id}", put_machine, methods=["PUT"]),
    Route("/api/machines/{id}", remove_machine, methods=["DELETE"]),
    Route("/api/tenants", list_tenants),
    Route("/api/tenants", post_tenant, methods=["POST"]),
    Route("/api/tenants/all", all_tenants),
    Route("/api/tenants/{id}", get_tenant),
    Route("/api/tenants/{id}", put_tenant, methods=["PUT"]),
]
