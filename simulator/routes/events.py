"""The audit log: /api/events (newest first) with Octopus's filters, categories and groups."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.audit import ALL_CATEGORIES, EVENT_GROUPS, query_events, use_event_id_blocks
from simulator.errors import bad_request, not_found
from simulator.paging import bool_param, collection, int_param, list_param
from simulator.routes.common import ok, path_param, store
from simulator.timeutil import iso, parse_iso


def _date(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return iso(parse_iso(raw))
    except ValueError:
        raise bad_request(f"The value '{raw}' is not a valid date for {name}.") from None


async def list_events(request: Request) -> Response:
    space = request.scope.get("state", {}).get("space_id")
    query: dict[str, Any] = {
        "regarding": list_param(request, "regarding"),
        "regardingAny": list_param(request, "regardingAny"),
        "eventCategories": list_param(request, "eventCategories"),
        "eventGroups": list_param(request, "eventGroups"),
        "projects": list_param(request, "projects"),
        "environments": list_param(request, "environments"),
        "tenants": list_param(request, "tenants"),
        "users": list_param(request, "users") + list_param(request, "user"),
        "spaces": list_param(request, "spaces") or ([space] if space else []),
        "ids": list_param(request, "ids"),
        "includeSystem": bool_param(request, "includeSystem"),
        "fromAutoId": int_param(request, "fromAutoId", 0),
        "toAutoId": int_param(request, "toAutoId", 0),
        "from": _date(request, "from"),
        "to": _date(request, "to"),
    }
    events = query_events(store(request), query)
    if bool_param(request, "excludeDifference"):
        events = [{**e, "ChangeDetails": None} for e in events]
    return ok(collection(request, events, "Event"))


async def get_event(request: Request) -> Response:
    event_id = path_param(request, "id")
    s = store(request)
    auto_id = s.event_auto_ids.get(event_id)
    if auto_id is None:
        raise not_found(event_id)
    return ok(s.events[auto_id - 1])


async def event_ids(request: Request) -> Response:
    """Control: GET the event id allocation; PUT {"Nodes": n, "BlockSize": b} to allocate ids in blocks per
    node from now on, apart from auto ids, as a server with several nodes does."""
    s = store(request)
    if request.method == "PUT":
        body = await request.json()
        nodes, block_size = body.get("Nodes"), body.get("BlockSize")
        if not (isinstance(nodes, int) and isinstance(block_size, int) and nodes >= 1 and block_size >= 1):
            raise bad_request("Nodes and BlockSize must be whole numbers of at least 1.")
        use_event_id_blocks(s, nodes=nodes, block_size=block_size)
    blocks = s.event_id_blocks
    return ok(blocks.to_json() if blocks is not None else {"Nodes": None, "BlockSize": None})


async def categories(request: Request) -> Response:
    return ok([{"Id": c, "Name": c, "Links": {}} for c in ALL_CATEGORIES])


async def groups(request: Request) -> Response:
    return ok([{"Id": g, "Name": g, "EventCategories": cats, "Links": {}} for g, cats in EVENT_GROUPS.items()])


routes = [
    Route("/api/events", list_events),
    Route("/api/events/categories", categories),
    Route("/api/events/groups", groups),
    Route("/api/events/{id}", get_event),
    Route("/_simulator/event-ids", event_ids, methods=["GET", "PUT"]),
]
