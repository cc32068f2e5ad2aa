"""The Octopus client through its transport seam: retries, errors, paging, and the key kept out of errors."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from workers.octopus import (
    API_KEY_HEADER,
    OctopusBadRequest,
    OctopusClient,
    OctopusForbidden,
    OctopusNotFound,
    OctopusUnavailable,
    RetryPolicy,
)

API_KEY = "API-TESTKEY0000000000000000000"
Answer = Callable[[httpx.Request], httpx.Response]


def client_for(answer: Answer, *, attempts: int = 4) -> tuple[OctopusClient, list[float]]:
    sleeps: list[float] = []
    client = OctopusClient(
        base_url="http://octopus.test",
        api_key=API_KEY,
        transport=httpx.MockTransport(answer),
        retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.05, max_elapsed=5),
        sleep=sleeps.append,
    )
    return client, sleeps


def scripted(*responses: httpx.Response | Exception) -> tuple[Answer, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    remaining = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = remaining.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return answer, seen


def test_sends_the_api_key_header_and_decodes_json() -> None:
    answer, seen = scripted(httpx.Response(200, json={"Id": "Machines-1"}))
    client, _ = client_for(answer)

    assert client.get("/api/Spaces-1/machines/Machines-1") == {"Id": "Machines-1"}
    assert seen[0].headers[API_KEY_HEADER] == API_KEY
    assert client.calls == {"GET /api/{space}/machines/{id}": 1}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_answers_are_retried_for_reads(status: int) -> None:
    answer, seen = scripted(httpx.Response(status), httpx.Response(status), httpx.Response(200, json=[]))
    client, sleeps = client_for(answer)

    assert client.get("/api/spaces/all") == []
    assert len(seen) == 3
    assert len(sleeps) == 2


def test_retry_after_is_honoured() -> None:
    answer, _ = scripted(httpx.Response(429, headers={"Retry-After": "0.2"}), httpx.Response(200, json={}))
    client, sleeps = client_for(answer)

    client.get("/api/users/me")

    assert sleeps[0] >= 0.2


def test_retries_are_bounded_and_end_in_a_transient_error() -> None:
    answer, seen = scripted(*[httpx.Response(503)] * 3)
    client, _ = client_for(answer, attempts=3)

    with pytest.raises(OctopusUnavailable) as raised:
        client.get("/api/Spaces-1/projects/all")

    assert len(seen) == 3
    assert "GET /api/Spaces-1/projects/all" in str(raised.value)


def test_a_write_is_not_repeated_after_a_server_error_it_may_have_acted_on() -> None:
    answer, seen = scripted(httpx.Response(502))
    client, _ = client_for(answer)

    with pytest.raises(OctopusUnavailable):
        client.post("/api/Spaces-1/deployments", {"ReleaseId": "Releases-1"})

    assert len(seen) == 1


def test_a_write_is_repeated_when_it_never_reached_octopus_or_was_throttled() -> None:
    request = httpx.Request("POST", "http://octopus.test/api/Spaces-1/deployments")
    answer, seen = scripted(
        httpx.ConnectError("refused", request=request),
        httpx.Response(429),
        httpx.Response(201, json={"Id": "Deployments-9"}),
    )
    client, _ = client_for(answer)

    assert client.post("/api/Spaces-1/deployments", {"ReleaseId": "Releases-1"}) == {"Id": "Deployments-9"}
    assert len(seen) == 3


def test_read_timeouts_are_transient() -> None:
    request = httpx.Request("GET", "http://octopus.test/api/tasks/ServerTasks-1")
    answer, _ = scripted(*[httpx.ReadTimeout("slow", request=request)] * 4)
    client, _ = client_for(answer)

    with pytest.raises(OctopusUnavailable):
        client.get("/api/tasks/ServerTasks-1")


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, OctopusBadRequest), (401, OctopusForbidden), (403, OctopusForbidden), (404, OctopusNotFound)],
)
def test_permanent_answers_are_not_retried_and_explain_themselves(status: int, kind: type[Exception]) -> None:
    body = {"ErrorMessage": "There was a problem with your request.", "Errors": ["Release not found"]}
    answer, seen = scripted(httpx.Response(status, json=body))
    client, _ = client_for(answer)

    with pytest.raises(kind) as raised:
        client.get("/api/Spaces-1/releases/Releases-404")

    assert len(seen) == 1
    message = str(raised.value)
    assert "GET /api/Spaces-1/releases/Releases-404" in message
    assert "There was a problem with your request. (Release not found)" in message
    assert API_KEY not in message
    assert API_KEY not in repr(raised.value.__dict__)


def test_items_follows_pages_until_the_total() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        skip = int(request.url.params["skip"])
        take = int(request.url.params["take"])
        items = [{"Id": f"Events-{n}"} for n in range(skip, min(skip + take, 250))]
        return httpx.Response(200, json={"Items": items, "TotalResults": 250, "ItemsPerPage": take})

    client, _ = client_for(answer)

    ids = [item["Id"] for item in client.items("/api/events", {"spaces": "Spaces-1"})]

    assert ids == [f"Events-{n}" for n in range(250)]
    assert client.calls["GET /api/events"] == 3
    assert [item["Id"] for item in client.items("/api/events", limit=5)] == [f"Events-{n}" for n in range(5)]


def test_query_values_are_rendered_as_octopus_expects() -> None:
    answer, seen = scripted(httpx.Response(200, content=json.dumps({"Items": [], "TotalResults": 0})))
    client, _ = client_for(answer)

    client.get("/api/Spaces-1/interruptions", {"regarding": "Deployments-1", "pendingOnly": True, "x": None})

    assert seen[0].url.params == httpx.QueryParams({"regarding": "Deployments-1", "pendingOnly": "true"})
