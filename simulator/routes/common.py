"""What every route needs: the simulator, the space, the caller, the body, JSON answers and list filters."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from simulator.errors import bad_request
from simulator.paging import list_param
from simulator.permissions import require
from simulator.store import Doc, Store

if TYPE_CHECKING:
    from simulator.runtime import Simulator


def simulator(request: Request) -> Simulator:
    sim: Simulator = request.app.state.simulator
    return sim


def store(request: Request) -> Store:
    return simulator(request).store


def space_id(request: Request) -> str:
    """The space named in the path, or the default space for the unprefixed routes."""
    chosen: str | None = request.scope.get("state", {}).get("space_id")
    return chosen or store(request).default_space_id


def caller(request: Request) -> Doc:
    return store(request).users[request.scope["state"]["user_id"]]


def allow(request: Request, permission: str) -> Doc:
    user = caller(request)
    require(store(request), user, permission)
    return user


async def body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def path_param(request: Request, name: str) -> str:
    return str(request.path_params[name])


def named_filter(request: Request, docs: Iterable[Doc]) -> list[Doc]:
    """The common list filters: ids, name (exact, case-insensitive) and partialName (substring)."""
    ids = list_param(request, "ids")
    name = request.query_params.get("name")
    partial = request.query_params.get("partialName")
    found = []
    id_set = set(ids)
    for doc in docs:
        if id_set and doc["Id"] not in id_set:
            continue
        doc_name = str(doc.get("Name", ""))
        if name and doc_name.lower() != name.lower():
            continue
        if partial and partial.lower() not in doc_name.lower():
            continue
        found.append(doc)
    return found
