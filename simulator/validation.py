"""Reading fields out of request bodies, with Octopus-style 400s."""

from __future__ import annotations

import re
from typing import Any

from simulator.errors import bad_request

Doc = dict[str, Any]


def body_object(body: object) -> Doc:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def canonical_keys(body: Doc, names: tuple[str, ...]) -> Doc:
    """Octopus reads JSON property names case-insensitively: `releaseId` is `ReleaseId`."""
    canonical = {name.lower(): name for name in names}
    return {canonical.get(key.lower(), key): value for key, value in body.items()}


def required_str(body: Doc, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"The {name} field is required.")
    return value.strip()


def optional_str(body: Doc, name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_request(f"The {name} field must be a string.")
    return value


def str_list(body: Doc, name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"The {name} field must be a list of strings.")
    return list(dict.fromkeys(value))


def optional_bool(body: Doc, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_request(f"The {name} field must be true or false.")
    return value


def one_of(body: Doc, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise bad_request(f"The {name} field must be one of: {', '.join(allowed)}.")
    return str(value)


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
