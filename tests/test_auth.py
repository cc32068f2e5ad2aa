"""Who may read what, over real HTTP: read tokens, the write-token gate, /metrics, the webhook secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.app import create_app
from service.auth import TokenGate
from service.threaded_server import serve_in_thread
from tests.conftest import make_settings
from tests.support.tokens import OLD_READ_TOKEN, READ_AUTH, READ_TOKEN, WRITE_TOKEN
from tests.support.webhooks import HEADER, SECRET, post
from workers.keys import RedisKeys

READ_ENDPOINTS = ["/plans", "/plans/plan-1", "/approvals", "/metrics", "/reports/deployments"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", READ_ENDPOINTS)
def test_read_endpoints_need_a_read_token(intake_url: str, path: str) -> None:
    missing = httpx.get(f"{intake_url}{path}")
    wrong = httpx.get(f"{intake_url}{path}", headers=bearer(READ_TOKEN + "x"))
    not_bearer = httpx.get(f"{intake_url}{path}", headers={"Authorization": f"Basic {READ_TOKEN}"})

    for refused in (missing, wrong, not_bearer):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.json()["error"] == "unauthorized"
        assert "CONDUCTOR_READ_TOKENS" in refused.json()["message"]
    # plan-1 does not exist: a 404 shows the token opened the endpoint.
    assert httpx.get(f"{intake_url}{path}", headers=READ_AUTH).status_code in (200, 404)


def test_every_configured_read_token_opens_during_a_rotation(intake_url: str) -> None:
    assert httpx.get(f"{intake_url}/plans", headers=bearer(READ_TOKEN)).status_code == 200
    assert httpx.get(f"{intake_url}/plans", headers=bearer(OLD_READ_TOKEN)).status_code == 200


def test_the_webhook_secret_opens_no_read_endpoint_and_a_read_token_no_webhook(
    intake_url: str, webhook: Callable[[str], dict[str, Any]]
) -> None:
    as_bearer = httpx.get(f"{intake_url}/plans", headers=bearer(SECRET))
    as_header = httpx.get(f"{intake_url}/plans", headers={HEADER: SECRET})
    token_as_secret = post(intake_url, webhook("deployment_failed_2023"), {HEADER: READ_TOKEN, **_json()})
    token_as_bearer = post(intake_url, webhook("deployment_failed_2023"), {**READ_AUTH, **_json()})

    assert as_bearer.status_code == 401
    assert as_header.status_code == 401
    assert token_as_secret.status_code == 401
    assert token_as_bearer.status_code == 401


def test_without_a_read_token_configured_the_read_api_is_shut_and_says_how_to_open_it(
    redis_url: str, keys: RedisKeys
) -> None:
    settings = make_settings(redis_url, keys, read_tokens=None)
    with serve_in_thread(create_app(settings)) as url:
        answers = {path: httpx.get(f"{url}{path}", headers=READ_AUTH) for path in READ_ENDPOINTS}
        health = httpx.get(f"{url}/healthz")

    for answer in answers.values():
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
        assert "Set CONDUCTOR_READ_TOKENS" in answer.json()["message"]
    assert health.status_code == 200


def test_metrics_open_leaves_only_metrics_open(redis_url: str, keys: RedisKeys) -> None:
    settings = make_settings(redis_url, keys, metrics_open=True)
    with serve_in_thread(create_app(settings)) as url:
        metrics = httpx.get(f"{url}/metrics")
        plans = httpx.get(f"{url}/plans")

    assert metrics.status_code == 200
    assert "conductor_redis_up" in metrics.text
    assert plans.status_code == 401


def test_health_and_readiness_stay_open_and_say_only_up_or_down(intake_url: str) -> None:
    health = httpx.get(f"{intake_url}/healthz")
    ready = httpx.get(f"{intake_url}/readyz")

    assert health.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready", "redis": "ok"}


def test_write_gate_on_a_tiny_app() -> None:
    async def promote(request: Request) -> JSONResponse:
        return JSONResponse({"status": "accepted"}, status_code=202)

    gate = TokenGate(tokens=[WRITE_TOKEN.encode()], variable="CONDUCTOR_WRITE_TOKENS", access="write")
    shut = TokenGate(tokens=[], variable="CONDUCTOR_WRITE_TOKENS", access="write")
    app = Starlette(
        routes=[
            Route("/promotions", gate.protect(promote), methods=["POST"]),
            Route("/shut", shut.protect(promote), methods=["POST"]),
        ]
    )
    with serve_in_thread(app) as url:
        written = httpx.post(f"{url}/promotions", headers=bearer(WRITE_TOKEN))
        with_read_token = httpx.post(f"{url}/promotions", headers=READ_AUTH)
        without = httpx.post(f"{url}/promotions")
        shut_answer = httpx.post(f"{url}/shut", headers=bearer(WRITE_TOKEN))

    assert written.status_code == 202
    assert with_read_token.status_code == 401
    assert "CONDUCTOR_WRITE_TOKENS" in without.json()["message"]
    assert without.headers["WWW-Authenticate"].startswith("Bearer")
    assert shut_answer.status_code == 403


def test_write_tokens_are_a_setting_of_their_own(redis_url: str, keys: RedisKeys) -> None:
    settings = make_settings(redis_url, keys, write_tokens=f"{WRITE_TOKEN}, {WRITE_TOKEN}-next")

    assert settings.write_token_values() == [WRITE_TOKEN.encode(), f"{WRITE_TOKEN}-next".encode()]
    assert WRITE_TOKEN.encode() not in settings.read_token_values()


def test_short_tokens_are_refused(redis_url: str, keys: RedisKeys) -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        make_settings(redis_url, keys, read_tokens="short")


@pytest.mark.parametrize("secret", ["clé-secrète-ünïcode", "秘密の合言葉-値"])
def test_a_non_ascii_webhook_secret_matches_its_utf8_bytes_over_http(
    redis_url: str, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]], secret: str
) -> None:
    settings = make_settings(redis_url, keys, webhook_secret=secret)
    body = webhook("deployment_failed_2023")
    with serve_in_thread(create_app(settings)) as url:
        # Octopus sends the header value as UTF-8; the ASGI server hands it over as Latin-1 text.
        right = httpx.post(f"{url}/webhooks/octopus", json=body, headers=_raw({HEADER: secret.encode("utf-8")}))
        latin1_lookalike = httpx.post(
            f"{url}/webhooks/octopus",
            json=body,
            headers=_raw({HEADER: secret.encode("utf-8").decode("latin-1").encode("utf-8")}),
        )

    assert right.status_code == 202, right.text
    assert latin1_lookalike.status_code == 401


def _raw(headers: dict[str, bytes]) -> dict[bytes, bytes]:
    return {b"Content-Type": b"application/json", **{name.encode(): value for name, value in headers.items()}}


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}
