"""Project variable sets: read and replace (`/api/{space}/variables/{VariableSetId}`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.routes.common import allow, body, ok, path_param, space_id, store
from simulator.store import get_doc
from simulator.variables import render_variable_set, update_variable_set


async def get_variable_set(request: Request) -> Response:
    s = store(request)
    return ok(render_variable_set(s, get_doc(s.variable_sets, path_param(request, "id"), space_id(request))))


async def put_variable_set(request: Request) -> Response:
    allow(request, "VariableEdit")
    s = store(request)
    variable_set = get_doc(s.variable_sets, path_param(request, "id"), space_id(request))
    return ok(render_variable_set(s, update_variable_set(s, variable_set, await body(request))))


routes = [
    Route("/api/variables/{id}", get_variable_set),
    Route("/api/variables/{id}", put_variable_set, methods=["PUT"]),
]
