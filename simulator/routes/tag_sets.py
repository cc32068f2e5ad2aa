"""Tag sets: list (ids, partialName), all, get, create."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.paging import collection
from simulator.routes.common import allow, body, named_filter, ok, path_param, space_id, store
from simulator.store import Doc, get_doc, in_space
from simulator.tag_sets import create_tag_set


def _tag_sets(request: Request) -> list[Doc]:
    found = named_filter(request, in_space(store(request).tag_sets, space_id(request)))
    return sorted(found, key=lambda s: (s["SortOrder"], int(s["Id"].split("-")[1])))


async def list_tag_sets(request: Request) -> Response:
    return ok(collection(request, _tag_sets(request), "TagSet"))


async def all_tag_sets(request: Request) -> Response:
    return ok(_tag_sets(request))


async def get_tag_set(request: Request) -> Response:
    return ok(get_doc(store(request).tag_sets, path_param(request, "id"), space_id(request)))


async def post_tag_set(request: Request) -> Response:
    user = allow(request, "TagSetCreate")
    return ok(create_tag_set(store(request), space_id(request), await body(request), user), 201)


routes = [
    Route("/api/tagsets", list_tag_sets),
    Route("/api/tagsets", post_tag_set, methods=["POST"]),
    Route("/api/tagsets/all", all_tag_sets),
    Route("/api/tagsets/{id}", get_tag_set),
]
