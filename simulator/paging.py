"""Octopus's ResourceCollection: Items, TotalResults, ItemsPerPage, NumberOfPages, LastPageNumber, Links."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from simulator.errors import bad_request

Doc = dict[str, Any]
DEFAULT_TAKE = 30
TAKE_ALL = 2147483647


def int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"The value '{raw}' is not valid for {name}.") from None


def list_param(request: Request, name: str) -> list[str]:
    """Comma-separated list parameters (RFC 6570 list expansion); repeated keys are merged too."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return raw.lower() in ("true", "1", "yes")


def collection(request: Request, items: Sequence[Doc], item_type: str, *, extra: Doc | None = None) -> Doc:
    skip = max(0, int_param(request, "skip", 0))
    take = max(0, int_param(request, "take", DEFAULT_TAKE))
    total = len(items)
    pages = max(1, math.ceil(total / take)) if take else 1
    # Links keep the path the caller used (with or without the space segment).
    path = str(request.scope.get("state", {}).get("original_path") or request.url.path)
    others = [(k, v) for k, v in request.query_params.multi_items() if k not in ("skip", "take", "apikey")]

    def link(s: int, t: int) -> str:
        return f"{path}?{urlencode([*others, ('skip', str(s)), ('take', str(t))])}"

    links = {
        "Self": link(skip, take),
        "Template": path + "{?skip,take,ids,partialName}",
        "Page.All": link(0, TAKE_ALL),
        "Page.Current": link(skip, take),
        "Page.Last": link((pages - 1) * take, take),
    }
    if take and skip + take < total:
        links["Page.Next"] = link(skip + take, take)
    if skip > 0 and take:
        links["Page.Previous"] = link(max(0, skip - take), take)
    body: Doc = {
        "ItemType": item_type,
        "TotalResults": total,
        "ItemsPerPage": take,
        "NumberOfPages": pages,
        "LastPageNumber": pages - 1,
        "Items": list(items[skip : skip + take]),
    }
    if extra:
        body.update(extra)
    body["Links"] = links
    return body
