"""The webhook intake over real HTTP against real Redis: every answer, and what it leaves in Redis."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from service.app import create_app
from service.threaded_server import serve_in_thread
from tests.conftest import make_settings
from tests.support.private_redis import PrivateRedis
from tests.support.tokens import READ_AUTH
from tests.support.webhooks import AUTH, FIXTURES, HEADER, OLD_SECRET, SECRET, post
from workers.keys import RedisKeys

WEBHOOK_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json"))


def queue_of(connection: redis.Redis, keys: RedisKeys) -> Queue:
    return Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)


def own_keys(connection: redis.Redis, keys: RedisKeys) -> list[bytes]:
    return [
        *connection.scan_iter(match=f"{keys.prefix}:*"),
        *connection.scan_iter(match=f"rq:*{keys.prefix}*"),
    ]


def deployment_event(webhook: Callable[[str], dict[str, Any]], event_id: str) -> dict[str, Any]:
    body = webhook("deployment_failed_2023")
    body["Payload"]["Event"]["Id"] = event_id
    return body


def test_new_event_is_queued_with_its_job_id(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    response = post(intake_url, deployment_event(webhook, "Events-101"))

    assert response.status_code == 202
    assert response.json() == {
        "status": "queued",
        "event_id": "Events-101",
        "category": "DeploymentFailed",
        "job_id": keys.job_id("Events-101"),
    }
    queue = queue_of(connection, keys)
    assert queue.job_ids == [keys.job_id("Events-101")]
    job = Job.fetch(keys.job_id("Events-101"), connection=connection, serializer=JSONSerializer)
    assert job.func_name == "workers.jobs.handle_event"
    (argument,) = job.args
    assert argument["event"]["Id"] == "Events-101"
    assert argument["source"] == "webhook"
    assert job.retries_left == 2


def test_job_arguments_carry_no_subscription_and_no_secret(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = deployment_event(webhook, "Events-102")
    body["Payload"]["Subscription"]["EventNotificationSubscription"]["WebhookHeaderValue"] = SECRET

    assert post(intake_url, body).status_code == 202

    job = Job.fetch(keys.job_id("Events-102"), connection=connection, serializer=JSONSerializer)
    assert "Subscription" not in json.dumps(job.args)
    assert SECRET not in json.dumps(job.args)
    # Nothing the intake wrote holds the secret (job data is stored as plain JSON).
    for key in own_keys(connection, keys):
        kind = connection.type(key)
        values = (
            connection.hgetall(key).values()
            if kind == b"hash"
            else connection.lrange(key, 0, -1)
            if kind == b"list"
            else []
        )
        assert all(SECRET.encode() not in (v if isinstance(v, bytes) else v.encode()) for v in values)


def test_subscription_of_any_shape_is_neither_parsed_nor_refused(
    intake_url: str, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = deployment_event(webhook, "Events-103")
    body["Payload"]["Subscription"] = ["not", "an", "object"]

    assert post(intake_url, body).status_code == 202


def test_duplicate_is_answered_with_the_same_job_and_not_queued_again(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = deployment_event(webhook, "Events-103")
    first = post(intake_url, body)
    second = post(intake_url, body)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert second.json()["job_id"] == first.json()["job_id"]
    assert queue_of(connection, keys).count == 1


def test_twenty_concurrent_deliveries_make_exactly_one_job(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = deployment_event(webhook, "Events-104")
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def deliver() -> None:
        barrier.wait()
        statuses.append(post(intake_url, body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 19 + [202]
    assert queue_of(connection, keys).job_ids == [keys.job_id("Events-104")]


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_every_public_payload_shape_is_accepted(
    name: str, intake_url: str, webhook: Callable[[str], dict[str, Any]]
) -> None:
    response = post(intake_url, webhook(name))

    assert response.status_code in (200, 202), response.text
    assert response.json()["event_id"] == webhook(name)["Payload"]["Event"]["Id"]


def test_category_without_handler_is_ignored_and_recorded(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    response = post(intake_url, webhook("document_created_2020"))

    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "event_id": "Events-4417", "category": "Created"}
    assert queue_of(connection, keys).count == 0
    (recent,) = [json.loads(raw) for raw in connection.lrange(keys.recent_events, 0, -1)]
    assert recent["id"] == "Events-4417"
    assert recent["outcome"] == "ignored"
    metrics = httpx.get(f"{intake_url}/metrics", headers=READ_AUTH).text
    assert 'conductor_webhook_events_total{category="Created",outcome="ignored"} 1.0' in metrics


def test_previous_secret_is_accepted_during_rotation(intake_url: str, webhook: Callable[[str], dict[str, Any]]) -> None:
    headers = {HEADER: OLD_SECRET, "Content-Type": "application/json"}
    assert post(intake_url, deployment_event(webhook, "Events-105"), headers).status_code == 202


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({"Content-Type": "application/json"}, None, 401, "unauthorized"),
        ({HEADER: "wrong", "Content-Type": "application/json"}, None, 401, "unauthorized"),
        ({HEADER: SECRET + "x", "Content-Type": "application/json"}, None, 401, "unauthorized"),
        ({HEADER: SECRET, "Content-Type": "text/plain"}, None, 415, "unsupported_media_type"),
        ({HEADER: SECRET}, None, 415, "unsupported_media_type"),
        (AUTH, b"{not json", 400, "invalid_json"),
        (AUTH, b"", 400, "invalid_json"),
        (AUTH, b"[1, 2]", 422, "invalid_payload"),
        (AUTH, {"Payload": {}}, 422, "invalid_payload"),
    ],
)
def test_refusals_are_clear_and_change_nothing(
    intake_url: str,
    connection: redis.Redis,
    keys: RedisKeys,
    webhook: Callable[[str], dict[str, Any]],
    headers: dict[str, str],
    body: Any,
    status: int,
    reason: str,
) -> None:
    response = post(intake_url, deployment_event(webhook, "Events-106") if body is None else body, headers)

    assert response.status_code == status
    assert response.json()["error"] == reason
    assert response.json()["message"]
    assert own_keys(connection, keys) == []


def test_payload_errors_name_the_field(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = deployment_event(webhook, "Events-107")
    del body["Payload"]["Event"]["Category"]
    body["Payload"]["Event"]["Occurred"] = "yesterday"

    response = post(intake_url, body)

    assert response.status_code == 422
    fields = {item["field"] for item in response.json()["fields"]}
    assert fields == {"Payload.Event.Category", "Payload.Event.Occurred"}
    assert "Payload.Event.Category" in response.json()["message"]
    assert own_keys(connection, keys) == []


def test_event_id_must_be_an_octopus_event_id(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = deployment_event(webhook, "Events-1 OR 1=1")

    response = post(intake_url, body)

    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "Payload.Event.Id"
    assert own_keys(connection, keys) == []


def test_body_over_the_limit_is_refused_while_reading(
    redis_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    settings = make_settings(redis_url, keys, max_body_bytes=4096)
    body = deployment_event(webhook, "Events-108")
    body["Payload"]["Event"]["Message"] = "x" * 5000
    content = json.dumps(body).encode()

    def chunks() -> Iterator[bytes]:
        # Streamed without Content-Length: the limit must hold while the body is read.
        for start in range(0, len(content), 1024):
            yield content[start : start + 1024]

    with serve_in_thread(create_app(settings)) as url:
        declared = httpx.post(f"{url}/webhooks/octopus", content=content, headers=AUTH)
        streamed = httpx.post(f"{url}/webhooks/octopus", content=chunks(), headers=AUTH)

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json()["limit"] == 4096
    assert own_keys(connection, keys) == []


def test_unknown_route_and_wrong_method_answer_json(intake_url: str) -> None:
    missing = httpx.get(f"{intake_url}/nothing-here")
    wrong_method = httpx.get(f"{intake_url}/webhooks/octopus")

    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


def test_health_and_readiness(intake_url: str) -> None:
    assert httpx.get(f"{intake_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{intake_url}/readyz").status_code == 200


def test_redis_down_answers_503_and_recovers_without_restart(
    tmp_path: Path, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    private = PrivateRedis(tmp_path)
    private.start()
    settings = make_settings(private.url, keys)
    try:
        with serve_in_thread(create_app(settings)) as url:
            assert post(url, deployment_event(webhook, "Events-201")).status_code == 202

            private.stop()
            down = post(url, deployment_event(webhook, "Events-202"))
            not_ready = httpx.get(f"{url}/readyz")
            metrics = httpx.get(f"{url}/metrics", headers=READ_AUTH).text

            private.start()
            back = post(url, deployment_event(webhook, "Events-202"))
    finally:
        private.stop()

    assert down.status_code == 503
    assert down.json()["error"] == "unavailable"
    assert not_ready.status_code == 503
    assert "conductor_redis_up 0.0" in metrics
    assert 'conductor_webhook_rejected_total{reason="unavailable"} 1.0' in metrics
    assert back.status_code == 202
