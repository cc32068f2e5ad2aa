"""`POST /webhooks/octopus`: from an HTTP request to an event stored in Redis, or a clear refusal.

The order of checks is the order of cost: the secret, the content type, the size (while reading), the
JSON, the payload's shape. A refused request touches nothing in Redis.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis
import structlog
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from service.auth import WebhookAuth
from service.event_writer import EventWriter
from service.metrics import IntakeMetrics
from workers.event_queue import Submission
from workers.events import QueuedEvent, WebhookEnvelope, utcnow

log = structlog.get_logger("conductor.intake")

MAX_REPORTED_ERRORS = 10


class _Answer(JSONResponse):
    """The intake's JSON answer, rendered by orjson (compact, as Starlette's own), with the headers
    JSONResponse would give it (content-length, then content-type) written directly: no headers of
    its own, no background task."""

    def __init__(self, content: dict[str, Any], status_code: int) -> None:
        self.status_code = status_code
        self.background = None
        self.body = orjson.dumps(content)
        self.raw_headers = [(b"content-length", b"%d" % len(self.body)), _JSON_CONTENT_TYPE]


_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details


class WebhookIntake:
    def __init__(
        self,
        *,
        auth: WebhookAuth,
        writer: EventWriter,
        handled_categories: frozenset[str],
        max_body_bytes: int,
        metrics: IntakeMetrics,
    ) -> None:
        self._auth = auth
        self._writer = writer
        self._handled = handled_categories
        self._max_body_bytes = max_body_bytes
        self._metrics = metrics

    async def handle(self, request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            return await self._accept(request)
        except Refusal as refusal:
            self._metrics.rejected.labels(refusal.reason).inc()
            log.info("webhook refused", reason=refusal.reason, status=refusal.status)
            body = {"error": refusal.reason, "message": refusal.message, **refusal.details}
            return JSONResponse(body, status_code=refusal.status)
        finally:
            self._metrics.latency.observe(time.perf_counter() - started)

    async def _accept(self, request: Request) -> JSONResponse:
        if not self._auth.accepts(request.headers):
            raise Refusal(
                401,
                "unauthorized",
                f"Missing or wrong {self._auth.header} header. Set the Octopus subscription's "
                "WebhookHeaderKey and WebhookHeaderValue to the conductor's configured header and secret.",
            )
        content_type, declared_length = _content_type_and_length(request.scope["headers"])
        _require_json_content_type(content_type)
        body = await self._read_body(request, declared_length)
        envelope = _parse(body)
        queued = QueuedEvent.from_webhook(envelope, received_at=utcnow())
        event = queued.event
        submission = Submission(event=queued, handled=event.Category in self._handled)
        try:
            result = await self._writer.write(submission)
        except (redis.RedisError, OSError, TimeoutError) as error:
            log.error("store not confirmed", event_id=event.Id, category=event.Category, error=type(error).__name__)
            # A timeout can come after Redis ran the script, so 503 cannot promise "not stored".
            raise Refusal(
                503,
                "unavailable",
                "The event queue (Redis) did not confirm that the event was stored: it may or may not have been. "
                "A later delivery of the same event is deduplicated; Octopus does not retry webhooks, and the "
                "reconciler catches up from the audit log what was not stored.",
            ) from None
        self._metrics.count_event(event.Category, result.outcome)
        # `bind()` is the logger the proxy caches; `log.info` would reach it through a failed attribute lookup.
        log.bind().info(
            "webhook event",
            event_id=event.Id,
            category=event.Category,
            outcome=result.outcome,
            job_id=result.job_id,
            batch_id=queued.batch_id,
        )
        answer: dict[str, Any] = {"status": result.outcome, "event_id": event.Id, "category": event.Category}
        if result.job_id is not None:
            answer["job_id"] = result.job_id
        return _Answer(answer, status_code=202 if result.outcome == "queued" else 200)

    async def _read_body(self, request: Request, declared: str | None) -> bytes:
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            raise _too_large(self._max_body_bytes)
        # The ASGI messages read directly, as Starlette's `stream()` does, without an async generator per request.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _too_large(self._max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_type_and_length(raw_headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The first Content-Type and Content-Length, as `request.headers.get` gives them, from one pass over the
    ASGI headers (whose names the server gives in lower case) instead of a lookup each."""
    content_type = content_length = None
    for name, value in raw_headers:
        if name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"content-length" and content_length is None:
            content_length = value.decode("latin-1")
    return content_type, content_length


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"The body is larger than {limit} bytes (CONDUCTOR_MAX_BODY_BYTES).", limit=limit)


def _require_json_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return
    raise Refusal(
        415,
        "unsupported_media_type",
        f"Content-Type must be application/json, not {media_type or 'missing'!r}.",
    )


def _parse(body: bytes) -> WebhookEnvelope:
    try:
        return WebhookEnvelope.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        if any(problem["type"] == "json_invalid" for problem in problems):
            raise Refusal(400, "invalid_json", "The body is not valid JSON.") from None
        fields = [
            {"field": ".".join(str(part) for part in problem["loc"]) or "(body)", "problem": problem["msg"]}
            for problem in problems[:MAX_REPORTED_ERRORS]
        ]
        names = ", ".join(item["field"] for item in fields)
        raise Refusal(
            422,
            "invalid_payload",
            f"The body is not an Octopus subscription payload: {names}.",
            fields=fields,
        ) from None
