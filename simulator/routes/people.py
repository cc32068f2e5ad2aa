"""Users, API keys, teams and team membership (global, as in Octopus)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.accounts import add_api_key, create_team, create_user, team_memberships, update_team_members
from simulator.errors import bad_request
from simulator.paging import bool_param, collection, list_param
from simulator.routes.common import allow, body, caller, named_filter, ok, path_param, store
from simulator.store import Doc, get_doc


async def me(request: Request) -> Response:
    return ok(caller(request))


async def list_users(request: Request) -> Response:
    users = list(store(request).users.values())
    ids = set(list_param(request, "ids"))
    text = (request.query_params.get("filter") or "").lower()
    users = [
        u
        for u in users
        if (not ids or u["Id"] in ids)
        and (not text or text in u["Username"].lower() or text in u["DisplayName"].lower())
    ]
    return ok(collection(request, users, "User"))


async def all_users(request: Request) -> Response:
    return ok(list(store(request).users.values()))


async def get_user(request: Request) -> Response:
    return ok(get_doc(store(request).users, path_param(request, "id")))


async def post_user(request: Request) -> Response:
    allow(request, "UserEdit")
    return ok(create_user(store(request), await body(request)), 201)


def _key_view(record: Doc) -> Doc:
    return {k: v for k, v in record.items() if k != "ApiKey"}


async def post_api_key(request: Request) -> Response:
    user = caller(request)
    target = get_doc(store(request).users, path_param(request, "id"))
    if target["Id"] != user["Id"]:
        allow(request, "UserEdit")
    data = await body(request)
    purpose = data.get("Purpose") if isinstance(data, dict) else None
    return ok(add_api_key(store(request), target["Id"], str(purpose or "")), 201)


async def list_api_keys(request: Request) -> Response:
    target = get_doc(store(request).users, path_param(request, "id"))
    keys = [_key_view(r) for r in store(request).api_keys.values() if r["UserId"] == target["Id"]]
    return ok(collection(request, keys, "ApiKey"))


def _teams(request: Request) -> list[Doc]:
    teams = list(store(request).teams.values())
    space = request.scope.get("state", {}).get("space_id")
    spaces = list_param(request, "spaces") or ([space] if space else [])
    include_system = bool_param(request, "includeSystem", True)
    if spaces:
        teams = [t for t in teams if t["SpaceId"] in spaces or (t["SpaceId"] is None and include_system)]
    return named_filter(request, teams)


async def list_teams(request: Request) -> Response:
    return ok(collection(request, _teams(request), "Team"))


async def all_teams(request: Request) -> Response:
    return ok(_teams(request))


async def get_team(request: Request) -> Response:
    return ok(get_doc(store(request).teams, path_param(request, "id")))


async def post_team(request: Request) -> Response:
    allow(request, "TeamCreate")
    data = await body(request)
    space = data.get("SpaceId") if isinstance(data, dict) else None
    return ok(create_team(store(request), data, space_id=space), 201)


async def put_team(request: Request) -> Response:
    allow(request, "TeamEdit")
    team = get_doc(store(request).teams, path_param(request, "id"))
    return ok(update_team_members(store(request), team, await body(request)))


async def user_teams(request: Request) -> Response:
    target = get_doc(store(request).users, path_param(request, "id"))
    memberships = team_memberships(store(request), target["Id"], list_param(request, "spaces"), True)
    return ok([{"Id": m["TeamId"], "Name": m["TeamName"], "SpaceId": m["SpaceId"]} for m in memberships])


async def team_membership(request: Request) -> Response:
    user_id = request.query_params.get("userId")
    if not user_id:
        raise bad_request("The userId parameter is required.")
    get_doc(store(request).users, user_id)
    spaces = list_param(request, "spaces")
    return ok(team_memberships(store(request), user_id, spaces, bool_param(request, "includeSystem", False)))


routes = [
    Route("/api/users/me", me),
    Route("/api/users", list_users),
    Route("/api/users", post_user, methods=["POST"]),
    Route("/api/users/all", all_users),
    Route("/api/users/{id}", get_user),
    Route("/api/users/{id}/apikeys", list_api_keys),
    Route("/api/users/{id}/apikeys", post_api_key, methods=["POST"]),
    Route("/api/users/{id}/teams", user_teams),
    Route("/api/teams", list_teams),
    Route("/api/teams", post_team, methods=["POST"]),
    Route("/api/teams/all", all_teams),
    Route("/api/teams/{id}", get_team),
    Route("/api/teams/{id}", put_team, methods=["PUT"]),
    Route("/api/teammembership", team_membership),
]
