"""Releases, deployment previews and templates."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.deploying import check_tenant, deployment_template, preview
from simulator.errors import bad_request
from simulator.paging import bool_param, collection, list_param
from simulator.projects import create_release
from simulator.routes.common import allow, body, ok, path_param, space_id, store
from simulator.store import Doc, get_doc
from simulator.validation import body_object


def release_list(request: Request, keep: Callable[[Doc], bool]) -> list[Doc]:
    """Newest first by creation; searchByVersion is a substring filter."""
    search = (request.query_params.get("searchByVersion") or "").lower()
    ids = set(list_param(request, "ids"))
    space = space_id(request)
    found = [
        r
        for r in store(request).releases.values()
        if r["SpaceId"] == space
        and keep(r)
        and (not search or search in r["Version"].lower())
        and (not ids or r["Id"] in ids)
    ]
    found.sort(key=lambda r: (r["Assembled"], int(r["Id"].split("-")[1])), reverse=True)
    return found


async def list_releases(request: Request) -> Response:
    return ok(collection(request, release_list(request, lambda r: True), "Release"))


async def get_release(request: Request) -> Response:
    return ok(get_doc(store(request).releases, path_param(request, "id"), space_id(request)))


async def post_release(request: Request) -> Response:
    user = allow(request, "ReleaseCreate")
    return ok(create_release(store(request), space_id(request), await body(request), user), 201)


async def release_deployments(request: Request) -> Response:
    release = get_doc(store(request).releases, path_param(request, "id"), space_id(request))
    found = [d for d in store(request).deployments.values() if d["ReleaseId"] == release["Id"]]
    found.reverse()
    return ok(collection(request, found, "Deployment"))


async def template(request: Request) -> Response:
    release = get_doc(store(request).releases, path_param(request, "id"), space_id(request))
    return ok(deployment_template(store(request), release))


def _preview(request: Request, release: Doc, environment_id: str, tenant_id: str | None) -> Doc:
    s = store(request)
    environment = get_doc(s.environments, environment_id, space_id(request))
    if tenant_id is not None:
        errors = check_tenant(s, s.projects[release["ProjectId"]], environment, tenant_id)
        if errors:
            raise bad_request(*errors)
    return preview(s, release, environment, tenant_id, bool_param(request, "includeDisabledSteps"))


async def preview_untenanted(request: Request) -> Response:
    release = get_doc(store(request).releases, path_param(request, "id"), space_id(request))
    return ok(_preview(request, release, path_param(request, "environment_id"), None))


async def preview_tenanted(request: Request) -> Response:
    release = get_doc(store(request).releases, path_param(request, "id"), space_id(request))
    return ok(_preview(request, release, path_param(request, "environment_id"), path_param(request, "tenant_id")))


async def previews(request: Request) -> Response:
    release = get_doc(store(request).releases, path_param(request, "id"), space_id(request))
    data = body_object(await body(request))
    requests = data.get("DeploymentPreviews")
    if not isinstance(requests, list) or not requests:
        raise bad_request("DeploymentPreviews must be a non-empty list of {EnvironmentId, TenantId}.")
    results = []
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("EnvironmentId"), str):
            raise bad_request("Each deployment preview needs an EnvironmentId.")
        tenant = item.get("TenantId") or None
        results.append(_preview(request, release, item["EnvironmentId"], tenant))
    return ok(results)


routes = [
    Route("/api/releases", list_releases),
    Route("/api/releases", post_release, methods=["POST"]),
    Route("/api/releases/{id}", get_release),
    Route("/api/releases/{id}/deployments", release_deployments),
    Route("/api/releases/{id}/deployments/template", template),
    Route("/api/releases/{id}/deployments/preview/{environment_id}", preview_untenanted),
    Route("/api/releases/{id}/deployments/preview/{environment_id}/{tenant_id}", preview_tenanted),
    Route("/api/releases/{id}/deployments/previews", previews, methods=["POST"]),
]
