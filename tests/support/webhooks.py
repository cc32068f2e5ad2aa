"""Sending webhooks to an intake the way Octopus does, and the payload fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"
HEADER = "X-Conductor-Token"
SECRET = "s3cret-current-value"
OLD_SECRET = "s3cret-previous-value"
AUTH = {HEADER: SECRET, "Content-Type": "application/json"}


def load_webhook(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/webhooks/octopus", content=content, headers=headers or AUTH, timeout=10)
