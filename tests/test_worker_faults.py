"""Faults around the workers, with real processes: Octopus failing or hanging, workers killed or stopped,
the intake unreachable, the same event many times. The effect must happen, and happen once."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from service.threaded_server import free_port
from simulator.seed import STAGING_ID, WEB_API_ID, WEB_ROLE, WEB_UI_ID
from tests.support.stack import CONDUCTOR, Stack, running_stack, wait_for
from tests.support.webhooks import post
from workers.keys import RedisKeys

pytestmark = pytest.mark.slow
WEB_COMPONENTS = [WEB_API_ID, WEB_UI_ID]


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path) as running:
        yield running


def add_fault(stack: Stack, **rule: Any) -> None:
    with stack.admin as client:
        response = client.post("/_simulator/faults", json=rule)
    assert response.status_code == 201, response.text


def quiet_machine(stack: Stack, name: str) -> dict[str, Any]:
    """A machine whose only event is MachineAdded (no health check follows), so one job carries it."""
    return stack.add_machine(name, STAGING_ID, [WEB_ROLE], SkipInitialHealthCheck=True)


def job_status(stack: Stack, job_id: str) -> JobStatus | None:
    """None until the webhook has brought the event and the intake has queued it."""
    try:
        return Job.fetch(job_id, connection=stack.connection, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        return None


def machine_added_job_id(stack: Stack, machine_id: str) -> str:
    with stack.admin as client:
        events = client.get("/api/events", params={"regarding": machine_id, "eventCategories": "MachineAdded"})
    (event,) = events.json()["Items"]
    return stack.keys.job_id(event["Id"])


@pytest.mark.parametrize(
    "fault",
    [
        {"Method": "POST", "PathPattern": "/api/Spaces-1/deployments", "Status": 500, "Count": 2},
        {"Method": "GET", "PathPattern": "/api/Spaces-1/deployments", "Status": 503, "Count": 4},
        {"Method": "GET", "PathPattern": "/api/Spaces-1/releases/*", "Status": 429, "RetryAfter": 1, "Count": 3},
        {"Method": "GET", "PathPattern": "/api/Spaces-1/machines/*", "HangSeconds": 12, "Count": 1},
        {"Method": "*", "PathPattern": "/api/*", "Status": 503, "DurationSeconds": 4},
    ],
    ids=["500-on-create", "503-on-list", "429-on-releases", "hang-on-machine", "503-everywhere-for-4s"],
)
def test_octopus_faults_delay_the_work_but_never_double_it(stack: Stack, fault: dict[str, Any]) -> None:
    before = stack.last_deployment_number()

    # The machine is registered first (a fault on every route would refuse that too), then Octopus fails.
    quiet_machine(stack, "stg-web-fault")
    add_fault(stack, **fault)
    (plan,) = stack.finished_plans(1, timeout=90)

    assert plan.status == "succeeded"
    assert [d["ProjectId"] for d in stack.deployments_since(before)] == WEB_COMPONENTS


def test_a_worker_killed_in_a_job_leaves_it_to_another_within_two_minutes(stack: Stack) -> None:
    before = stack.last_deployment_number()
    add_fault(stack, Method="GET", PathPattern="/api/Spaces-1/machines/*", HangSeconds=8, Count=1)
    machine = quiet_machine(stack, "stg-web-killed")
    job_id = machine_added_job_id(stack, machine["Id"])
    wait_for("the worker to be inside the job", lambda: job_status(stack, job_id) == JobStatus.STARTED, timeout=30)
    (worker,) = stack.workers
    stack.kill_worker(worker)
    killed_at = time.monotonic()
    stack.start_worker()

    (plan,) = stack.finished_plans(1, timeout=150)
    recovered_after = time.monotonic() - killed_at

    print(f"\njob abandoned by SIGKILL finished by another worker {recovered_after:.0f} s after the kill")
    assert recovered_after < 120
    assert plan.status == "succeeded"
    assert job_status(stack, job_id) == JobStatus.FINISHED
    assert [d["ProjectId"] for d in stack.deployments_since(before)] == WEB_COMPONENTS


def test_sigterm_lets_a_worker_finish_the_job_in_hand(stack: Stack) -> None:
    add_fault(stack, Method="GET", PathPattern="/api/Spaces-1/machines/*", HangSeconds=3, Count=1)
    machine = quiet_machine(stack, "stg-web-stopped")
    job_id = machine_added_job_id(stack, machine["Id"])
    wait_for("the worker to be inside the job", lambda: job_status(stack, job_id) == JobStatus.STARTED, timeout=30)
    (worker,) = stack.workers

    worker.send_signal(signal.SIGTERM)
    code = worker.wait(30)

    assert code == 0
    assert job_status(stack, job_id) == JobStatus.FINISHED


def test_the_same_event_fifty_times_at_once_has_one_effect(stack: Stack) -> None:
    before = stack.last_deployment_number()
    machine = quiet_machine(stack, "stg-web-fifty")
    with stack.admin as client:
        events = client.get("/api/events", params={"regarding": machine["Id"], "eventCategories": "MachineAdded"})
    (event,) = events.json()["Items"]
    envelope = {"Timestamp": event["Occurred"], "EventType": "SubscriptionPayload", "Payload": {"Event": event}}
    barrier = threading.Barrier(50)
    statuses: list[int] = []

    def deliver() -> None:
        barrier.wait()
        statuses.append(post(stack.intake_url, envelope).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.finished_plans(1)

    # The subscription may have delivered it first; either way it was queued exactly once.
    assert statuses.count(202) <= 1
    assert statuses.count(200) + statuses.count(202) == 50
    assert [d["ProjectId"] for d in stack.deployments_since(before)] == WEB_COMPONENTS


def test_events_missed_while_the_intake_was_down_are_caught_up_once(stack: Stack) -> None:
    before = stack.last_deployment_number()
    point_subscription_at(stack, f"http://127.0.0.1:{free_port()}/webhooks/octopus")  # nobody listens there
    machine = stack.add_machine("stg-web-missed", STAGING_ID, [WEB_ROLE])
    wait_for("the failed deliveries", lambda: _failed_deliveries(stack), timeout=30)

    first = _reconcile(stack)
    (plan,) = stack.finished_plans(1)
    point_subscription_at(stack, f"{stack.intake_url}/webhooks/octopus")  # the intake is back
    # The deployments' own events were missed too, while the webhook still pointed nowhere.
    caught_up = _reconcile(stack)
    finally_quiet = _reconcile(stack)

    assert first["queued"] >= 1
    assert plan.machine_ids == [machine["Id"]]
    assert caught_up["queued"] >= 2
    assert finally_quiet["queued"] == 0
    assert [d["ProjectId"] for d in stack.deployments_since(before)] == WEB_COMPONENTS


def point_subscription_at(stack: Stack, url: str) -> None:
    """Change where Octopus delivers, leaving its delivery cursor where Octopus has it."""
    with stack.admin as client:
        (subscription,) = client.get("/api/subscriptions/all").json()
        subscription["EventNotificationSubscription"]["WebhookURI"] = url
        # Sending back the cursor read a moment ago would rewind it and have the missed events delivered again.
        subscription["EventNotificationSubscription"].pop("WebhookLastProcessedEventAutoId")
        assert client.put(f"/api/subscriptions/{subscription['Id']}", json=subscription).status_code == 200


def _failed_deliveries(stack: Stack) -> bool:
    with stack.admin as client:
        attempts = client.get("/_simulator/deliveries").json()
    return any(attempt["Delivered"] is False for attempt in attempts)


def _reconcile(stack: Stack) -> dict[str, int]:
    result = subprocess.run([CONDUCTOR, "reconcile"], env=stack.worker_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    match = re.search(r"read (\d+) events: (\d+) queued", result.stdout)
    assert match is not None, result.stdout
    return {"read": int(match.group(1)), "queued": int(match.group(2))}
