"""Fault injection for the conductor's reliability tests: answer 500/503/429 (with Retry-After) or hang,
on routes matching a method and a path pattern, for a number of requests or a length of time."""

from __future__ import annotations

import asyncio
import fnmatch
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.errors import bad_request

REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class FaultRule:
    id: str
    method: str
    path_pattern: str
    status: int | None
    retry_after: int | None
    hang_seconds: float
    remaining: int | None
    until: float | None  # time.monotonic() deadline

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path_pattern)

    def to_json(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Method": self.method,
            "PathPattern": self.path_pattern,
            "Status": self.status,
            "RetryAfter": self.retry_after,
            "HangSeconds": self.hang_seconds,
            "Remaining": self.remaining,
            "ExpiresInSeconds": None if self.until is None else max(0.0, round(self.until - time.monotonic(), 3)),
        }


@dataclass
class FaultRules:
    rules: list[FaultRule] = field(default_factory=list)
    counter: int = 0

    def add(self, body: object) -> FaultRule:
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        status = body.get("Status")
        hang = body.get("HangSeconds") or 0
        if status is None and not hang:
            raise bad_request("Give a Status (e.g. 500, 503, 429) or HangSeconds, or both.")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise bad_request("Status must be an HTTP error status between 400 and 599.")
        if not isinstance(hang, int | float) or hang < 0:
            raise bad_request("HangSeconds must be a non-negative number.")
        count = body.get("Count")
        duration = body.get("DurationSeconds")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise bad_request("Count must be a positive integer.")
        if duration is not None and (not isinstance(duration, int | float) or duration <= 0):
            raise bad_request("DurationSeconds must be a positive number.")
        retry_after = body.get("RetryAfter")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise bad_request("RetryAfter must be a non-negative integer (seconds).")
        self.counter += 1
        rule = FaultRule(
            id=f"Faults-{self.counter}",
            method=str(body.get("Method") or "*").upper(),
            path_pattern=str(body.get("PathPattern") or "/api/*"),
            status=status,
            retry_after=retry_after,
            hang_seconds=float(hang),
            remaining=count,
            until=None if duration is None else time.monotonic() + float(duration),
        )
        self.rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        now = time.monotonic()
        for rule in self.rules:
            if rule.matches(method, path, now):
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule
        return None

    def active(self) -> list[FaultRule]:
        now = time.monotonic()
        return [
            r for r in self.rules if (r.until is None or now < r.until) and (r.remaining is None or r.remaining > 0)
        ]


class FaultInjection:
    """ASGI middleware in front of /api: applies the first active rule that matches."""

    def __init__(self, app: ASGIApp, faults: FaultRules) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        rule = self.faults.take(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.hang_seconds:
            await asyncio.sleep(rule.hang_seconds)
        if rule.status is None:
            await self.app(scope, receive, send)
            return
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        reason = REASONS.get(rule.status, "Error")
        response = JSONResponse(
            {"ErrorMessage": f"{reason} (injected by the simulator)", "Errors": []},
            status_code=rule.status,
            headers=headers,
        )
        await response(scope, receive, send)
