"""New deployment targets, end to end: the seeded simulator delivers machine events as webhooks to the
intake, worker processes run the plans against the simulator's REST API, and real Redis holds it all."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.seed import (
    APP_ROLE,
    CONTOSO_ID,
    FABRIKAM_ID,
    PRODUCTION_ID,
    SCHEDULING_SERVICE_ID,
    SPACE_ID,
    STAGING_ID,
    WEB_API_ID,
    WEB_ROLE,
    WEB_UI_ID,
)
from tests.support.stack import CONDUCTOR, Stack, people_approving, running_stack, wait_for
from tests.support.tokens import READ_AUTH
from tests.support.webhooks import post
from workers.keys import RedisKeys

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, window=0.5) as running:
        yield running


def version_of(stack: Stack, release_id: str) -> str:
    with stack.admin as client:
        return str(client.get(f"/api/{SPACE_ID}/releases/{release_id}").json()["Version"])


def task_of(stack: Stack, deployment: dict[str, Any]) -> dict[str, Any]:
    with stack.admin as client:
        task: dict[str, Any] = client.get(f"/api/tasks/{deployment['TaskId']}").json()
        return task


def test_new_web_server_in_production_gets_web_api_then_web_ui_alone_in_order(stack: Stack) -> None:
    before = stack.last_deployment_number()
    with people_approving(stack.sim_url):
        machine = stack.add_machine("prod-web-99", PRODUCTION_ID, [WEB_ROLE])
        plans = stack.finished_plans(1)

    deployments = stack.deployments_since(before)
    assert [d["ProjectId"] for d in deployments] == [WEB_API_ID, WEB_UI_ID]
    for deployment in deployments:
        assert deployment["SpecificMachineIds"] == [machine["Id"]]
        assert deployment["EnvironmentId"] == PRODUCTION_ID
        assert deployment["DeployedToMachineIds"] == [machine["Id"]]
        assert "Release Conductor" in deployment["Comments"]
    # Web API's latest Production deployment (2021.2.0.1) failed: its last successful release is redeployed.
    assert [version_of(stack, d["ReleaseId"]) for d in deployments] == ["2021.1.0.1", "2021.1.0.2"]
    web_api_task, web_ui_task = (task_of(stack, d) for d in deployments)
    assert web_api_task["State"] == web_ui_task["State"] == "Success"
    assert web_api_task["CompletedTime"] <= web_ui_task["QueueTime"]

    plan = plans[0]
    assert plan.status == "succeeded"
    assert plan.machine_ids == [machine["Id"]]
    steps = {step.project: step for step in plan.steps}
    assert steps["Database"].status == "skipped"
    assert "targets" in (steps["Database"].reason or "")
    assert steps["Scheduling Service"].status == "skipped"
    assert steps["Web API"].status == steps["Web UI"].status == "succeeded"
    assert all(p.status == "succeeded" for p in stack.plans.recent())


def test_tenanted_machines_get_their_tenants_release(stack: Stack) -> None:
    before = stack.last_deployment_number()
    tenanted = {"TenantedDeploymentParticipation": "Tenanted"}
    with people_approving(stack.sim_url):
        contoso = stack.add_machine(
            "prod-app-contoso-09", PRODUCTION_ID, [APP_ROLE], TenantIds=[CONTOSO_ID], **tenanted
        )
        fabrikam = stack.add_machine(
            "prod-app-fabrikam-09", PRODUCTION_ID, [APP_ROLE], TenantIds=[FABRIKAM_ID], **tenanted
        )
        stack.finished_plans(2)

    deployments = stack.deployments_since(before)
    assert {d["ProjectId"] for d in deployments} == {SCHEDULING_SERVICE_ID}
    by_tenant = {d["TenantId"]: d for d in deployments}
    assert set(by_tenant) == {CONTOSO_ID, FABRIKAM_ID}
    assert by_tenant[CONTOSO_ID]["SpecificMachineIds"] == [contoso["Id"]]
    assert by_tenant[FABRIKAM_ID]["SpecificMachineIds"] == [fabrikam["Id"]]
    assert version_of(stack, by_tenant[CONTOSO_ID]["ReleaseId"]) == "2021.2.0.1"
    assert version_of(stack, by_tenant[FABRIKAM_ID]["ReleaseId"]) == "2021.1.0.1"


def test_a_failure_in_the_first_component_stops_the_second(stack: Stack) -> None:
    before = stack.last_deployment_number()
    with stack.admin as client:
        failure = {"Project": "Web API", "StepName": "Deploy Web API", "Environment": "Staging", "Count": 1}
        assert client.post("/_simulator/step-failures", json=failure).status_code == 201

    machine = stack.add_machine("stg-web-77", STAGING_ID, [WEB_ROLE])
    (plan, *_) = stack.finished_plans(1)

    deployments = stack.deployments_since(before)
    assert [d["ProjectId"] for d in deployments] == [WEB_API_ID]
    assert task_of(stack, deployments[0])["State"] == "Failed"
    steps = {step.project: step for step in plan.steps}
    assert plan.status == "failed"
    assert plan.machine_ids == [machine["Id"]]
    assert steps["Web API"].status == "failed"
    # Components after the failure are not evaluated at all: they are reported as not deployed.
    assert steps["Scheduling Service"].status == steps["Web UI"].status == "not_run"
    assert steps["Web UI"].reason == "stopped after Web API failed"
    assert plan.report is not None
    assert "failed: Web API; not deployed: Scheduling Service, Web UI" in plan.report


def test_machines_added_together_share_one_deployment_per_component(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, window=2.0) as stack:
        before = stack.last_deployment_number()
        machines = [stack.add_machine(f"stg-web-5{n}", STAGING_ID, [WEB_ROLE]) for n in range(5)]
        stack.finished_plans(1)
        deployments = stack.deployments_since(before)

    ids = sorted(machine["Id"] for machine in machines)
    assert [d["ProjectId"] for d in deployments] == [WEB_API_ID, WEB_UI_ID]
    assert [sorted(d["SpecificMachineIds"]) for d in deployments] == [ids, ids]


def test_a_duplicate_event_creates_no_second_deployment(stack: Stack) -> None:
    before = stack.last_deployment_number()
    machine = stack.add_machine("stg-web-88", STAGING_ID, [WEB_ROLE])
    stack.finished_plans(1)
    with stack.admin as client:
        events = client.get("/api/events", params={"regarding": machine["Id"], "eventCategories": "MachineAdded"})
    (event,) = events.json()["Items"]
    envelope = {"Timestamp": event["Occurred"], "EventType": "SubscriptionPayload", "Payload": {"Event": event}}

    again = post(stack.intake_url, envelope)

    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert [d["ProjectId"] for d in stack.deployments_since(before)] == [WEB_API_ID, WEB_UI_ID]


def test_plans_are_shown_by_the_intake_and_by_status(stack: Stack) -> None:
    machine = stack.add_machine("stg-web-44", STAGING_ID, [WEB_ROLE])
    (plan,) = stack.finished_plans(1)

    listed = httpx.get(f"{stack.intake_url}/plans", headers=READ_AUTH).json()["plans"]
    one = httpx.get(f"{stack.intake_url}/plans/{plan.id}", headers=READ_AUTH)
    missing = httpx.get(f"{stack.intake_url}/plans/plan-999999", headers=READ_AUTH)
    status = subprocess.run([CONDUCTOR, "status"], env=stack.worker_env, capture_output=True, text=True, timeout=60)

    assert [item["id"] for item in listed] == [plan.id]
    assert one.json()["machine_ids"] == [machine["Id"]]
    web_api = next(step for step in one.json()["steps"] if step["project"] == "Web API")
    assert web_api["deployment_id"].startswith("Deployments-")
    assert web_api["task_id"].startswith("ServerTasks-")
    assert missing.status_code == 404
    assert f"{plan.id}  succeeded" in status.stdout
    assert (
        f"Web API                  succeeded  2021.2.0.1 {web_api['deployment_id']} {web_api['task_id']}"
        in status.stdout
    )


def test_a_worker_killed_in_the_middle_of_a_plan_never_makes_a_second_deployment(stack: Stack) -> None:
    before = stack.last_deployment_number()
    with stack.admin as client:
        # Slow tasks, so that the plan is surely in the middle when the worker dies.
        client.put("/_simulator/clock", json={"QueueDelay": 0.2, "StepDuration": 1.0})
    stack.add_machine("stg-web-66", STAGING_ID, [WEB_ROLE])
    wait_for("the first deployment", lambda: stack.deployments_since(before), timeout=30)
    (worker,) = stack.workers
    stack.kill_worker(worker)
    stack.start_worker()

    (plan,) = stack.finished_plans(1, timeout=150)

    assert plan.status == "succeeded"
    assert [d["ProjectId"] for d in stack.deployments_since(before)] == [WEB_API_ID, WEB_UI_ID]
