"""The /api front door: the space segment of space-scoped routes, and API-key authentication."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.errors import error_response, unauthorized
from simulator.store import Store

_SPACE_PATH = re.compile(r"^/api/(Spaces-\d+)(/.*)?$")


class SpaceScope:
    """Serve /api/Spaces-1/x and /api/x from the same routes: strip the space segment and remember it.
    /api/Spaces-1 alone is the space root and is left as it is."""

    def __init__(self, app: ASGIApp, store: Callable[[], Store]) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        path: str = scope["path"]
        state["original_path"] = path
        match = _SPACE_PATH.match(path)
        if match:
            space_id, rest = match.group(1), match.group(2)
            if space_id not in self.store().spaces:
                await error_response(404, f"The resource '{space_id}' was not found.")(scope, receive, send)
                return
            state["space_id"] = space_id
            if rest and rest != "/":
                scope = dict(scope, path="/api" + rest)
        await self.app(scope, receive, send)


class ApiKeyAuth:
    """X-Octopus-ApiKey header or apikey query parameter; 401 without a valid key. GET /api is open."""

    def __init__(self, app: ASGIApp, store: Callable[[], Store]) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api") or path in ("/api", "/api/"):
            await self.app(scope, receive, send)
            return
        key = _api_key(scope)
        record = self.store().api_keys.get(key) if key else None
        user = self.store().users.get(record["UserId"]) if record else None
        if user is None or not user.get("IsActive", True):
            await unauthorized()(scope, receive, send)
            return
        scope.setdefault("state", {})["user_id"] = user["Id"]
        await self.app(scope, receive, send)


def _api_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-octopus-apikey":
            return str(value.decode("latin-1"))
    query = scope.get("query_string", b"").decode("latin-1")
    for pair in query.split("&"):
        key_name, _, key_value = pair.partition("=")
        if key_name.lower() == "apikey" and key_value:
            return unquote(key_value)
    return None
