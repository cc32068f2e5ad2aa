"""Build information: push (`POST build-information{?overwriteMode}`), list and get."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.build_information import push_build_information
from simulator.paging import bool_param, collection
from simulator.routes.common import allow, body, ok, path_param, space_id, store
from simulator.store import get_doc, in_space


async def push(request: Request) -> Response:
    user = allow(request, "BuildInformationPush")
    mode = request.query_params.get("overwriteMode") or "FailIfExists"
    return ok(push_build_information(store(request), space_id(request), await body(request), mode, user), 201)


async def list_build_information(request: Request) -> Response:
    """Newest first; packageId is exact (case-insensitive), filter a version substring, latest one per package."""
    package_id = (request.query_params.get("packageId") or "").lower()
    version_filter = request.query_params.get("filter") or ""
    found = [
        doc
        for doc in reversed(in_space(store(request).build_information, space_id(request)))
        if (not package_id or doc["PackageId"].lower() == package_id) and version_filter in doc["Version"]
    ]
    if bool_param(request, "latest"):
        latest: dict[str, object] = {}
        found = [d for d in found if latest.setdefault(d["PackageId"].lower(), d) is d]
    return ok(collection(request, found, "OctopusPackageVersionBuildInformationMappedResource"))


async def get_build_information(request: Request) -> Response:
    return ok(get_doc(store(request).build_information, path_param(request, "id"), space_id(request)))


routes = [
    Route("/api/build-information", push, methods=["POST"]),
    Route("/api/build-information", list_build_information),
    Route("/api/build-information/{id}", get_build_information),
]
