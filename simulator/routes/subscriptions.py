"""Subscriptions: list, create, get, modify, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.paging import collection
from simulator.routes.common import allow, body, named_filter, ok, path_param, space_id, store
from simulator.store import get_doc, in_space
from simulator.subscriptions import create_subscription, render, update_subscription


async def list_subscriptions(request: Request) -> Response:
    found = [render(s) for s in named_filter(request, in_space(store(request).subscriptions, space_id(request)))]
    return ok(collection(request, found, "Subscription"))


async def all_subscriptions(request: Request) -> Response:
    return ok([render(s) for s in in_space(store(request).subscriptions, space_id(request))])


async def get_subscription(request: Request) -> Response:
    return ok(render(get_doc(store(request).subscriptions, path_param(request, "id"), space_id(request))))


async def post_subscription(request: Request) -> Response:
    user = allow(request, "SubscriptionCreate")
    created = create_subscription(store(request), space_id(request), await body(request), user)
    return ok(render(created), 201)


async def put_subscription(request: Request) -> Response:
    allow(request, "SubscriptionEdit")
    subscription = get_doc(store(request).subscriptions, path_param(request, "id"), space_id(request))
    return ok(render(update_subscription(store(request), subscription, await body(request))))


async def delete_subscription(request: Request) -> Response:
    allow(request, "SubscriptionDelete")
    s = store(request)
    subscription = get_doc(s.subscriptions, path_param(request, "id"), space_id(request))
    del s.subscriptions[subscription["Id"]]
    s.release_name("Subscription", subscription["SpaceId"], subscription["Name"])
    return ok({})


routes = [
    Route("/api/subscriptions", list_subscriptions),
    Route("/api/subscriptions", post_subscription, methods=["POST"]),
    Route("/api/subscriptions/all", all_subscriptions),
    Route("/api/subscriptions/{id}", get_subscription),
    Route("/api/subscriptions/{id}", put_subscription, methods=["PUT"]),
    Route("/api/subscriptions/{id}", delete_subscription, methods=["DELETE"]),
]
