"""Interruptions: list (regarding, pendingOnly), get, responsibility and submission."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.interruptions import (
    record_submission,
    regarding,
    render,
    take_responsibility,
    validate_submission,
)
from simulator.paging import bool_param, collection, list_param
from simulator.routes.common import body, caller, ok, path_param, space_id, store
from simulator.store import Doc, get_doc
from simulator.task_clock import interruption_submitted


async def list_interruptions(request: Request) -> Response:
    s = store(request)
    user = caller(request)
    doc_id = request.query_params.get("regarding")
    candidates = regarding(s, doc_id) if doc_id else list(s.interruptions.values())
    pending_only = bool_param(request, "pendingOnly")
    ids = set(list_param(request, "ids"))
    space = space_id(request)
    found = [
        render(s, i, user)
        for i in reversed(candidates)
        if i["SpaceId"] == space and (not pending_only or i["IsPending"]) and (not ids or i["Id"] in ids)
    ]
    return ok(collection(request, found, "Interruption"))


def _interruption(request: Request) -> Doc:
    return get_doc(store(request).interruptions, path_param(request, "id"), space_id(request))


async def get_interruption(request: Request) -> Response:
    return ok(render(store(request), _interruption(request), caller(request)))


async def get_responsible(request: Request) -> Response:
    interruption = _interruption(request)
    holder = interruption["ResponsibleUserId"]
    return ok(store(request).users.get(holder) if holder else None)


async def put_responsible(request: Request) -> Response:
    user = caller(request)
    take_responsibility(store(request), _interruption(request), user)
    return ok(user)


async def submit(request: Request) -> Response:
    s = store(request)
    user = caller(request)
    interruption = _interruption(request)
    values = validate_submission(s, interruption, user, await body(request))
    record_submission(s, interruption, user, values)
    interruption_submitted(s, interruption, values, user)
    return ok(render(s, interruption, user))


routes = [
    Route("/api/interruptions", list_interruptions),
    Route("/api/interruptions/{id}", get_interruption),
    Route("/api/interruptions/{id}/responsible", get_responsible),
    Route("/api/interruptions/{id}/responsible", put_responsible, methods=["PUT"]),
    Route("/api/interruptions/{id}/submit", submit, methods=["POST"]),
]
