"""A served simulator per test, driven over real HTTP only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from service.threaded_server import serve_in_thread
from simulator import seed
from simulator.app import create_app

_CLIENTS: dict[tuple[str, str], httpx.Client] = {}


def _client(base_url: str, api_key: str) -> httpx.Client:
    """Clients are reused: building one (and its TLS context) costs more than most requests."""
    key = (base_url, api_key)
    if key not in _CLIENTS:
        headers = {"X-Octopus-ApiKey": api_key} if api_key else {}
        _CLIENTS[key] = httpx.Client(base_url=base_url, headers=headers, timeout=10)
    return _CLIENTS[key]


class Api:
    """An httpx client for one simulator, acting as one user (the administrator by default)."""

    def __init__(self, base_url: str, api_key: str = seed.ADMIN_API_KEY) -> None:
        self.base_url = base_url
        self.client = _client(base_url, api_key)

    def as_user(self, api_key: str) -> Api:
        return Api(self.base_url, api_key)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body)

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.put(path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path)

    def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return _client(self.base_url, "").request(method, f"/_simulator{path}", json=body)

    def task(self, task_id: str) -> Any:
        return self.json(f"/api/tasks/{task_id}")

    def deploy(self, **body: Any) -> Any:
        response = self.post("/api/Spaces-1/deployments", body)
        assert response.status_code == 201, response.text
        return response.json()

    def wait_task(self, task_id: str, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            task = self.task(task_id)
            if predicate(task):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} never reached the expected state: {task}")
            time.sleep(0.02)

    def pending_interruptions(self, regarding: str) -> list[Any]:
        items: list[Any] = self.json("/api/Spaces-1/interruptions", regarding=regarding, pendingOnly="true")["Items"]
        return items

    def approve_all(self, regarding: str, api_key: str = seed.CONDUCTOR_API_KEY) -> None:
        """Take responsibility for and proceed every interruption of a deployment until none are pending."""
        user = self.as_user(api_key)
        for _ in range(10):
            pending = self.pending_interruptions(regarding)
            if not pending:
                return
            for interruption in pending:
                assert user.put(interruption["Links"]["Responsible"]).status_code == 200
                body = {"Notes": "approved", "Result": "Proceed"}
                assert user.post(interruption["Links"]["Submit"], body).status_code == 200
            time.sleep(0.05)
        raise AssertionError("interruptions kept coming")


ApiFactory = Callable[..., Api]


@pytest.fixture
def make_api() -> Iterator[ApiFactory]:
    stack = ExitStack()

    def make(**options: Any) -> Api:
        for name, value in FAST.items():
            options.setdefault(name, value)
        url = stack.enter_context(serve_in_thread(create_app(**options)))
        return Api(url)

    with stack:
        yield make


FAST: dict[str, Any] = {"queue_delay": 0, "step_duration": 0, "health_check_delay": 0, "delivery_interval": 3600}


@pytest.fixture(scope="session")
def shared_url() -> Iterator[str]:
    with serve_in_thread(create_app(**FAST)) as url:
        yield url


@pytest.fixture
def api(shared_url: str) -> Api:
    """One server for the session, reset to the sample seed (and the zero clock) before each test."""
    response = _client(shared_url, "").post("/_simulator/reset", json={"Seed": "sample"})
    assert response.status_code == 200
    return Api(shared_url)
