"""`POST /promotions`: a promotion on demand over HTTP, behind the write token (`CONDUCTOR_WRITE_TOKENS`).

The body is `workers.promotion_on_demand.PromotionRequest` as JSON: `{"orchestration": "sample-app",
"to": "Test", "from": "Development", "tenant": null, "what_if": true}`. The answer is the plan (201), made
before anything is deployed, so the caller sees it first; with `what_if` nothing is deployed at all.
Bad input changes nothing: 400 not JSON, 422 a body or a name that does not fit (the message says which),
503 when Octopus cannot be reached, 409 when this intake has no rules or no Octopus service account.
"""

from __future__ import annotations

import json

import redis
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.auth import Endpoint
from service.settings import Settings
from workers.errors import PermanentError, TransientError
from workers.promotion_on_demand import PromotionRequest, promote_on_demand
from workers.rules import Rules

MAX_BODY_BYTES = 16 * 1024


def promotions_endpoint(settings: Settings, connection: redis.Redis, rules: Rules | None) -> Endpoint:
    """The handler for `POST /promotions` (to be wrapped in the write token's gate)."""
    octopus = settings.octopus_client()
    context = (
        settings.worker_context(connection, rules=rules, octopus=octopus)
        if rules is not None and octopus is not None
        else None
    )

    async def create_promotion(request: Request) -> Response:
        if context is None:
            return _error(
                409,
                "not_configured",
                "This intake has no rules or no Octopus service account: set CONDUCTOR_RULES, "
                "CONDUCTOR_OCTOPUS_URL and CONDUCTOR_OCTOPUS_API_KEY for it to plan promotions.",
            )
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"The body is over {MAX_BODY_BYTES} bytes.")
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "not_json", "The body is not JSON.")
        try:
            wanted = PromotionRequest.model_validate(data)
        except ValidationError as error:
            fields = [
                {"field": ".".join(str(part) for part in problem["loc"]) or "(body)", "problem": problem["msg"]}
                for problem in error.errors(include_url=False, include_input=False)
            ]
            return JSONResponse(
                {"error": "invalid", "message": "The body is not a promotion request.", "fields": fields},
                status_code=422,
            )
        try:
            plan = await run_in_threadpool(promote_on_demand, wanted, context, requested_by="POST /promotions")
        except TransientError as error:
            return _error(503, "octopus_unavailable", str(error))
        except PermanentError as error:
            return _error(422, "cannot_plan", str(error))
        return JSONResponse(
            plan.model_dump(mode="json"), status_code=201, headers={"Location": f"/promotions/{plan.id}"}
        )

    return create_promotion


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)
