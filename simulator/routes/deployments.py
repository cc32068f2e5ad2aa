"""Deployments and the dashboard."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.dashboards import dashboard
from simulator.deploying import create_deployment
from simulator.paging import bool_param, collection, list_param
from simulator.routes.common import allow, body, ok, path_param, space_id, store
from simulator.store import Doc, get_doc


async def list_deployments(request: Request) -> Response:
    """Newest first; filters ids, projects, environments, tenants, channels and taskState."""
    s = store(request)
    space = space_id(request)
    ids = set(list_param(request, "ids"))
    projects = set(list_param(request, "projects"))
    environments = set(list_param(request, "environments"))
    tenants = set(list_param(request, "tenants"))
    channels = set(list_param(request, "channels"))
    state = request.query_params.get("taskState")
    found: list[Doc] = []
    for deployment in reversed(list(s.deployments.values())):
        if deployment["SpaceId"] != space:
            continue
        if ids and deployment["Id"] not in ids:
            continue
        if projects and deployment["ProjectId"] not in projects:
            continue
        if environments and deployment["EnvironmentId"] not in environments:
            continue
        if tenants and deployment["TenantId"] not in tenants:
            continue
        if channels and deployment["ChannelId"] not in channels:
            continue
        if state and s.tasks[deployment["TaskId"]]["State"] != state:
            continue
        found.append(deployment)
    return ok(collection(request, found, "Deployment"))


async def get_deployment(request: Request) -> Response:
    return ok(get_doc(store(request).deployments, path_param(request, "id"), space_id(request)))


async def post_deployment(request: Request) -> Response:
    user = allow(request, "DeploymentCreate")
    return ok(create_deployment(store(request), space_id(request), await body(request), user), 201)


async def get_dashboard(request: Request) -> Response:
    project_id = request.query_params.get("projectId")
    return ok(
        dashboard(
            store(request),
            space_id(request),
            project_ids=[project_id] if project_id else [],
            environment_ids=[],
            tenant_ids=list_param(request, "selectedTenants"),
        )
    )


async def dynamic_dashboard(request: Request) -> Response:
    return ok(
        dashboard(
            store(request),
            space_id(request),
            project_ids=list_param(request, "projects"),
            environment_ids=list_param(request, "environments"),
            tenant_ids=[],
            include_previous=bool_param(request, "includePrevious"),
        )
    )


routes = [
    Route("/api/deployments", list_deployments),
    Route("/api/deployments", post_deployment, methods=["POST"]),
    Route("/api/deployments/{id}", get_deployment),
    Route("/api/dashboard", get_dashboard),
    Route("/api/dashboard/dynamic", dynamic_dashboard),
]
