"""Webhook delivery to a real receiving server: envelope, header, one POST per event, no retry."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.threaded_server import serve_in_thread
from simulator import seed
from tests.simulator.conftest import Api, ApiFactory


class Receiver:
    """Records every POST; answers with planned statuses (200 once the plan runs out), optionally slowly."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.lock = threading.Lock()

    async def hook(self, request: Request) -> Response:
        body = await request.json()
        with self.lock:
            self.received.append({"headers": dict(request.headers), "body": body})
            status = self.statuses.pop(0) if self.statuses else 200
        if self.delay:
            await asyncio.sleep(self.delay)
        return JSONResponse({}, status_code=status)

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r["body"]["Payload"]["Event"]["Id"] for r in self.received]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = Starlette(routes=[Route("/hook", hook.hook, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield hook, f"{url}/hook"


def _subscribe(api: Api, url: str, **filters: list[str]) -> dict[str, Any]:
    body = {
        "Name": "Release conductor",
        "EventNotificationSubscription": {
            "WebhookURI": url,
            "WebhookHeaderKey": "X-Conductor-Token",
            "WebhookHeaderValue": "s3cret",
            "WebhookTimeout": "00:00:01",
            "Filter": {"EventCategories": ["MachineAdded"], **filters},
        },
    }
    response = api.post("/api/Spaces-1/subscriptions", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _add_machines(api: Api, count: int, prefix: str = "hook") -> list[str]:
    ids = []
    for number in range(count):
        body = {
            "Name": f"{prefix}-{number}",
            "EnvironmentIds": [seed.PRODUCTION_ID],
            "Roles": ["web-server"],
            "SkipInitialHealthCheck": True,
        }
        ids.append(api.post("/api/Spaces-1/machines", body).json()["Id"])
    return ids


def test_subscription_resource(api: Api, receiver: tuple[Receiver, str]) -> None:
    _, url = receiver
    subscription = _subscribe(api, url)
    assert subscription["Id"].startswith("Subscriptions-")
    assert subscription["Type"] == "Event"
    notification = subscription["EventNotificationSubscription"]
    assert notification["WebhookHeaderValue"] is None  # write-only
    assert notification["WebhookTimeout"] == "00:00:01"
    assert (
        notification["WebhookLastProcessedEventAutoId"]
        == int(api.json("/api/events", take=1)["Items"][0]["Id"].split("-")[1]) - 1
    )
    listed = api.json("/api/Spaces-1/subscriptions")["Items"]
    assert [s["Id"] for s in listed] == [subscription["Id"]]
    bad = api.post(
        "/api/Spaces-1/subscriptions", {"Name": "x", "EventNotificationSubscription": {"WebhookURI": "nope"}}
    )
    assert bad.status_code == 400


def test_one_post_per_event_with_envelope_and_header(api: Api, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    subscription = _subscribe(api, url)
    machines = _add_machines(api, 3)
    summary = api.control("POST", "/deliver").json()
    assert summary == [{"SubscriptionId": subscription["Id"], "Matched": 3, "Delivered": 3, "Failed": 0, "Dropped": 0}]
    assert len(hook.received) == 3
    batch_ids = set()
    for number, request in enumerate(hook.received, start=1):
        assert request["headers"]["x-conductor-token"] == "s3cret"
        assert request["headers"]["content-type"].startswith("application/json")
        body = request["body"]
        assert body["EventType"] == "SubscriptionPayload"
        assert set(body) == {"Timestamp", "EventType", "Payload"}
        payload = body["Payload"]
        assert set(payload) >= {
            "ServerUri",
            "ServerAuditUri",
            "BatchProcessingDate",
            "Subscription",
            "Event",
            "BatchId",
            "TotalEventsInBatch",
            "EventNumberInBatch",
        }
        assert (payload["TotalEventsInBatch"], payload["EventNumberInBatch"]) == (3, number)
        assert payload["Subscription"]["Id"] == subscription["Id"]
        assert payload["Subscription"]["EventNotificationSubscription"]["WebhookHeaderValue"] is None
        event = payload["Event"]
        assert event["Category"] == "MachineAdded"
        assert event["RelatedDocumentIds"] == [machines[number - 1], seed.PRODUCTION_ID]
        assert event["Links"]["Self"] == f"/api/events/{event['Id']}"
        batch_ids.add(payload["BatchId"])
    assert len(batch_ids) == 1
    cursor = api.json(f"/api/Spaces-1/subscriptions/{subscription['Id']}")["EventNotificationSubscription"]
    newest = int(api.json("/api/events", take=1)["Items"][0]["Id"].split("-")[1])
    assert cursor["WebhookLastProcessedEventAutoId"] == newest
    # Nothing new: nothing sent.
    api.control("POST", "/deliver")
    assert len(hook.received) == 3


def test_failed_post_drops_the_rest_of_the_batch_without_retry(api: Api, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _subscribe(api, url)
    _add_machines(api, 4)
    hook.statuses = [200, 500]
    summary = api.control("POST", "/deliver").json()[0]
    assert (summary["Delivered"], summary["Failed"], summary["Dropped"]) == (1, 1, 2)
    assert len(hook.received) == 2
    api.control("POST", "/deliver")
    assert len(hook.received) == 2  # the lost events are never retried
    later = _add_machines(api, 1, prefix="later")
    api.control("POST", "/deliver")
    assert len(hook.received) == 3
    assert hook.received[-1]["body"]["Payload"]["Event"]["RelatedDocumentIds"][0] == later[0]
    attempts = api.control("GET", "/deliveries").json()
    assert [a["Delivered"] for a in attempts] == [True, False, True]


def test_timeout_counts_as_failure(api: Api, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _subscribe(api, url)
    _add_machines(api, 2)
    hook.delay = 1.5  # longer than WebhookTimeout 00:00:01
    started = time.monotonic()
    summary = api.control("POST", "/deliver").json()[0]
    assert time.monotonic() - started < 1.45 + 0.5
    assert (summary["Delivered"], summary["Failed"], summary["Dropped"]) == (0, 1, 1)


def test_filters_by_environment_and_group(api: Api, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    _subscribe(api, url, EventCategories=[], EventGroups=["Machine"], Environments=[seed.TEST_ID])
    api.post(
        "/api/Spaces-1/machines",
        {"Name": "t-1", "EnvironmentIds": [seed.TEST_ID], "Roles": ["r"], "SkipInitialHealthCheck": True},
    )
    _add_machines(api, 1)  # Production: filtered out
    api.control("POST", "/deliver")
    assert [r["body"]["Payload"]["Event"]["Category"] for r in hook.received] == ["MachineAdded"]
    assert hook.received[0]["body"]["Payload"]["Event"]["RelatedDocumentIds"][1] == seed.TEST_ID


def test_delivery_loop_runs_on_its_own(make_api: ApiFactory, receiver: tuple[Receiver, str]) -> None:
    hook, url = receiver
    api = make_api(delivery_interval=0.1, public_url="http://octopus.example.test")
    _subscribe(api, url, EventCategories=["DeploymentQueued", "DeploymentStarted", "DeploymentSucceeded"])
    release = api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}/releases/2021.2.0.1")
    deployment = api.deploy(ReleaseId=release["Id"], EnvironmentId=seed.TEST_ID)
    deadline = time.monotonic() + 5
    while len(hook.received) < 3:
        assert time.monotonic() < deadline, hook.received
        time.sleep(0.02)
    events = [r["body"]["Payload"]["Event"] for r in hook.received]
    assert [e["Category"] for e in events] == ["DeploymentQueued", "DeploymentStarted", "DeploymentSucceeded"]
    assert events[-1]["RelatedDocumentIds"] == [
        deployment["Id"],
        seed.WEB_API_ID,
        release["Id"],
        seed.TEST_ID,
        deployment["TaskId"],
        release["ChannelId"],
    ]
    payload = hook.received[0]["body"]["Payload"]
    assert payload["ServerUri"] == "http://octopus.example.test"
    assert payload["ServerAuditUri"].startswith("http://octopus.example.test/app#/Spaces-1/configuration/audit?")
