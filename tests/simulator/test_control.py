"""The /_simulator control surface: faults, clock, reset."""

from __future__ import annotations

import time

import httpx

from simulator import seed
from tests.simulator.conftest import Api


def test_fault_for_a_count_with_retry_after(api: Api) -> None:
    fault = api.control(
        "POST",
        "/faults",
        {"Method": "GET", "PathPattern": "/api/*/projects*", "Status": 503, "RetryAfter": 2, "Count": 2},
    )
    assert fault.status_code == 201
    for _ in range(2):
        response = api.get("/api/Spaces-1/projects")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert "ErrorMessage" in response.json()
    assert api.get("/api/Spaces-1/projects").status_code == 200
    assert api.get("/api/Spaces-1/environments").status_code == 200
    assert api.control("GET", "/faults").json() == []


def test_fault_for_a_duration_only_on_the_chosen_method(api: Api) -> None:
    api.control(
        "POST", "/faults", {"Method": "POST", "PathPattern": "/api/*deployments", "Status": 429, "DurationSeconds": 0.3}
    )
    body = {"ReleaseId": "Releases-2", "EnvironmentId": seed.PRODUCTION_ID}
    assert api.post("/api/Spaces-1/deployments", body).status_code == 429
    assert api.get("/api/Spaces-1/deployments").status_code == 200
    time.sleep(0.35)
    assert api.post("/api/Spaces-1/deployments", body).status_code == 201


def test_hang(api: Api) -> None:
    api.control("POST", "/faults", {"PathPattern": "/api/users/me", "HangSeconds": 1, "Count": 1})
    try:
        httpx.get(f"{api.base_url}/api/users/me", headers={"X-Octopus-ApiKey": seed.ADMIN_API_KEY}, timeout=0.3)
        raise AssertionError("expected a timeout")
    except httpx.ReadTimeout:
        pass
    started = time.monotonic()
    assert api.get("/api/users/me").status_code == 200
    assert time.monotonic() - started < 0.5


def test_fault_rules_validation_and_clearing(api: Api) -> None:
    assert api.control("POST", "/faults", {"PathPattern": "/api/*"}).status_code == 400
    assert api.control("POST", "/faults", {"Status": 200}).status_code == 400
    api.control("POST", "/faults", {"Status": 500})
    assert api.get("/api/Spaces-1/projects").status_code == 500
    assert api.control("GET", "/clock").status_code == 200  # the control surface is never faulted
    api.control("DELETE", "/faults")
    assert api.get("/api/Spaces-1/projects").status_code == 200


def test_clock_settings(api: Api) -> None:
    assert api.control("PUT", "/clock", {"QueueDelaySeconds": 0.2, "StepDurationSeconds": 0}).json() == {
        "QueueDelaySeconds": 0.2,
        "StepDurationSeconds": 0.0,
        "HealthCheckDelaySeconds": 0.0,
    }
    assert api.control("PUT", "/clock", {"StepDurationSeconds": -1}).status_code == 400
    release = api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}/releases/2021.2.0.1")
    deployment = api.deploy(ReleaseId=release["Id"], EnvironmentId=seed.TEST_ID)
    assert api.task(deployment["TaskId"])["State"] == "Queued"
    assert api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"


def test_reset_returns_to_the_seed(api: Api) -> None:
    api.post("/api/Spaces-1/machines", {"Name": "temp", "EnvironmentIds": [seed.TEST_ID], "Roles": ["r"]})
    api.control("POST", "/faults", {"Status": 500, "PathPattern": "/api/nothing"})
    before = api.json("/api/Spaces-1/machines")["TotalResults"]
    reset = api.control("POST", "/reset")
    assert reset.status_code == 200
    assert api.json("/api/Spaces-1/machines")["TotalResults"] == before - 1
    assert api.control("GET", "/faults").json() == []
    api.control("POST", "/reset", {"Seed": "empty"})
    assert api.json("/api/Spaces-1/projects")["TotalResults"] == 0
    assert api.as_user(seed.QA_API_KEY).get("/api/users/me").status_code == 401
