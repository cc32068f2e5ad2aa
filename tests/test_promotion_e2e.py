"""Orchestrated promotion end to end: a Release Orchestration deployment drives its components, in order. The
seeded simulator delivers the parent's ManualInterventionInterruptionRaised and the components' outcomes as
webhooks to the intake, a worker process plans at "Plan the release" and deploys at "Deploy the components"
through the simulator's REST API, and real Redis holds the plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.seed import (
    BUSINESS_OWNER_API_KEY,
    CONDUCTOR_USER_ID,
    DBA_API_KEY,
    ORCHESTRATION_2021_3_RELEASE_ID,
    ORCHESTRATION_CHANGE_REQUEST_VARIABLE_ID,
    ORCHESTRATION_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    SPACE_ID,
    STAGING_ID,
    WEB_ADMIN_API_KEY,
    WEB_API_CHANGE_REQUEST_VARIABLE_ID,
)
from tests.support.stack import Stack, octopus, running_stack, wait_for
from tests.support.tokens import READ_AUTH
from tests.support.webhooks import post
from workers.keys import RedisKeys
from workers.plans import Plan

pytestmark = pytest.mark.slow

Doc = dict[str, Any]
FAST_LOOKS = {"look_again_seconds": 0.5, "look_again_max_seconds": 1, "keep_looking_seconds": 60}
PROMOTION = {"release_pattern": "{parent:3}.*", "promotion": {"task_check_seconds": 1}}
STAGED = [
    ("Database", "succeeded", "2021.3.0.1"),
    ("Web API", "succeeded", "2021.3.0.2"),
    ("Scheduling Service", "skipped", None),
    ("Web UI", "succeeded", "2021.3.0.1"),
]


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=PROMOTION) as running:
        yield running


def deploy(stack: Stack, release_id: str, environment_id: str) -> Doc:
    with stack.admin as admin:
        response = admin.post(
            f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release_id, "EnvironmentId": environment_id}
        )
    assert response.status_code == 201, response.text
    deployment: Doc = response.json()
    return deployment


def task_of(stack: Stack, deployment: Doc) -> Doc:
    with stack.admin as admin:
        task: Doc = admin.get(f"/api/tasks/{deployment['TaskId']}").json()
    return task


def finished_task(stack: Stack, deployment: Doc, timeout: float = 90) -> Doc:
    def probe() -> Doc | None:
        task = task_of(stack, deployment)
        return task if task["IsCompleted"] else None

    try:
        return wait_for(f"{deployment['Id']} to finish", probe, timeout=timeout)
    except AssertionError:
        plan = plan_of_or_none(stack, deployment)
        log = stack.log_path.read_text()[-6000:] if stack.log_path.exists() else ""
        raise AssertionError(f"{plan.model_dump_json(indent=1) if plan else 'no plan'}\nworker log:\n{log}") from None


def deploying(stack: Stack, parent: Doc, index: int) -> Plan:
    """The parent's plan once its component at `index` has a deployment."""

    def probe() -> Plan | None:
        plan = plan_of_or_none(stack, parent)
        return plan if plan is not None and plan.steps[index].task_id else None

    return wait_for(f"component {index} of {parent['Id']} deploying", probe, timeout=90)


def interruptions(stack: Stack, regarding: str) -> list[Doc]:
    with stack.admin as admin:
        items: list[Doc] = admin.get(f"/api/{SPACE_ID}/interruptions", params={"regarding": regarding}).json()["Items"]
    return items


def step_named(stack: Stack, deployment: Doc, title: str) -> Doc:
    return next(item for item in interruptions(stack, deployment["Id"]) if item["Title"] == title)


def pending(stack: Stack, deployment: Doc, title: str) -> Doc:
    def probe() -> Doc | None:
        return next((i for i in interruptions(stack, deployment["Id"]) if i["Title"] == title and i["IsPending"]), None)

    return wait_for(f"'{title}' pending in {deployment['Id']}", probe, timeout=60)


def answer(stack: Stack, api_key: str, step: Doc, result: str = "Proceed") -> None:
    base = f"/api/{SPACE_ID}/interruptions/{step['Id']}"
    with octopus(stack.sim_url, api_key) as person:
        assert person.put(f"{base}/responsible").status_code == 200
        assert person.post(f"{base}/submit", json={"Notes": "Signed off.", "Result": result}).status_code == 200


def plan_of(stack: Stack, parent: Doc) -> Plan:
    plan = stack.plans.load(f"promotion-{parent['Id']}")
    assert plan is not None
    return plan


def component_deployments(stack: Stack, plan: Plan) -> list[Doc]:
    with stack.admin as admin:
        return [
            admin.get(f"/api/{SPACE_ID}/deployments/{step.deployment_id}").json()
            for step in plan.steps
            if step.deployment_id
        ]


def promote_to_staging(stack: Stack) -> Doc:
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
    assert finished_task(stack, parent)["State"] == "Success"
    return parent


def test_to_staging_the_components_are_deployed_in_order_and_the_parent_succeeds(stack: Stack) -> None:
    parent = promote_to_staging(stack)

    plan = plan_of(stack, parent)
    assert plan.status == "succeeded"
    assert [(step.project, step.status, step.release_version) for step in plan.steps] == STAGED
    skipped = plan.steps[2].reason or ""
    assert "Scheduling Service" in skipped or "2021.3.0.*" in skipped
    created = component_deployments(stack, plan)
    assert [deployment["EnvironmentId"] for deployment in created] == [STAGING_ID] * 3
    tasks = [task_of(stack, deployment) for deployment in created]
    assert [task["State"] for task in tasks] == ["Success"] * 3
    for earlier, later in zip(tasks, created[1:], strict=False):
        assert earlier["CompletedTime"] <= later["Created"]  # one after the other, never two at once
    planned = step_named(stack, parent, "Plan the release")
    notes = planned["Form"]["Values"]["Notes"]
    assert (planned["ResponsibleUserId"], planned["Form"]["Values"]["Result"]) == (CONDUCTOR_USER_ID, "Proceed")
    for part in ("Database", "2021.3.0.1", "Web API", "2021.3.0.2", "Web UI", "Scheduling Service"):
        assert part in notes
    deployed = step_named(stack, parent, "Deploy the components")
    assert deployed["Form"]["Values"]["Result"] == "Proceed"
    assert deployed["Form"]["Values"]["Notes"].startswith("Every component is deployed or skipped.")


def test_to_production_the_approvers_read_the_notes_and_their_approvals_are_relayed(stack: Stack) -> None:
    promote_to_staging(stack)
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, PRODUCTION_ID)
    approvals = {title: pending(stack, parent, title) for title in ("QA approval", "Web Admins approval")}
    notes = step_named(stack, parent, "Plan the release")["Form"]["Values"]["Notes"]

    answer(stack, QA_API_KEY, approvals["QA approval"])
    answer(stack, WEB_ADMIN_API_KEY, approvals["Web Admins approval"])
    answer(stack, BUSINESS_OWNER_API_KEY, pending(stack, parent, "Business Owners approval"))
    plan = deploying(stack, parent, 0)
    dba = pending(stack, {"Id": plan.steps[0].deployment_id}, "DBA approval")  # no DBA approved in the parent
    left = wait_for("the DBA step left to people", lambda: stack.approvals.load(dba["Id"]))
    answer(stack, DBA_API_KEY, dba)
    task = finished_task(stack, parent, timeout=120)

    assert "Web API" in notes
    for change in ("SAMPLE-101", "SAMPLE-104", "SAMPLE-107", "Page the orders list", "Add the orders endpoint"):
        assert change in notes  # Web API's build information: work items and commits since Production's release
    assert left.status in ("looking", "refused")
    assert task["State"] == "Success"
    plan = plan_of(stack, parent)
    assert [(step.project, step.status) for step in plan.steps] == [(p, s) for p, s, _ in STAGED]
    relayed = []
    for deployment in component_deployments(stack, plan):
        for step in interruptions(stack, deployment["Id"]):
            if step["Title"] == "DBA approval":
                continue
            record = stack.approvals.load(step["Id"])
            assert record is not None
            assert record.status == "relayed", record.reason
            assert record.covered_by is not None
            assert (record.covered_by.kind, record.covered_by.deployment_id) == ("ordered_by_parent", parent["Id"])
            relayed.append(record.covered_by.approver.username)
    assert set(relayed) == {"qa.tester", "web.admin"}


def test_a_component_failure_answers_the_parent_abort_and_runs_nothing_after_it(stack: Stack) -> None:
    with stack.admin as admin:
        failure = {"Project": "Web API", "StepName": "Deploy Web API", "Environment": "Staging", "Count": 1}
        assert admin.post("/_simulator/step-failures", json=failure).status_code == 201
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)

    task = finished_task(stack, parent)

    assert task["State"] == "Failed"
    plan = plan_of(stack, parent)
    assert [(step.project, step.status) for step in plan.steps] == [
        ("Database", "succeeded"),
        ("Web API", "failed"),
        ("Scheduling Service", "skipped"),
        ("Web UI", "not_run"),
    ]
    answered = step_named(stack, parent, "Deploy the components")["Form"]["Values"]
    assert answered["Result"] == "Abort"
    assert answered["Notes"].startswith("Web API failed; not deployed: Web UI.")


def test_what_if_plans_and_deploys_nothing(redis_url: str, keys: RedisKeys, tmp_path: Path) -> None:
    what_if = {**PROMOTION, "promotion": {"task_check_seconds": 1, "what_if": True}}
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=what_if) as stack:
        parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
        task = finished_task(stack, parent)
        plan = plan_of(stack, parent)
        notes = step_named(stack, parent, "Plan the release")["Form"]["Values"]["Notes"]

    assert task["State"] == "Success"
    assert plan.status == "succeeded"
    assert all(step.deployment_id is None for step in plan.steps)
    assert "Web API" in notes


def test_a_parent_canceled_mid_way_cancels_the_component_deployment_it_started(stack: Stack) -> None:
    with stack.admin as admin:
        assert admin.put("/_simulator/clock", json={"StepDurationSeconds": 3}).status_code == 200
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
    plan = deploying(stack, parent, 0)
    with stack.admin as admin:
        assert admin.post(f"/api/tasks/{parent['TaskId']}/cancel").status_code == 200

    def settled() -> Plan | None:
        found = plan_of(stack, parent)
        return found if found.status != "running" else None

    ended = wait_for("the plan to end", settled, timeout=60)

    database = component_deployments(stack, ended)[0]
    assert task_of(stack, database)["State"] == "Canceled"
    assert ended.status == "failed"
    assert ended.steps[0].status == "failed"
    assert "was canceled" in (ended.steps[0].reason or "")
    assert [step.status for step in ended.steps[1:]] == ["not_run", "skipped", "not_run"]
    assert plan.steps[0].deployment_id == ended.steps[0].deployment_id


def plan_of_or_none(stack: Stack, parent: Doc) -> Plan | None:
    return stack.plans.load(f"promotion-{parent['Id']}")


def test_a_duplicate_deploy_event_creates_no_second_deployment_and_no_second_answer(stack: Stack) -> None:
    parent = promote_to_staging(stack)
    with stack.admin as admin:
        params = {"regarding": parent["Id"], "eventCategories": "ManualInterventionInterruptionRaised"}
        raised = admin.get("/api/events", params=params).json()["Items"]
    before = component_deployments(stack, plan_of(stack, parent))

    for event in raised:
        stack.connection.delete(stack.keys.dedupe(event["Id"]))  # as once the dedupe window has passed
        assert (
            post(stack.intake_url, {"EventType": "SubscriptionPayload", "Payload": {"Event": event}}).status_code == 202
        )
    wait_for("the queue to drain", lambda: stack.connection.llen(f"rq:queue:{stack.keys.queue_name}") == 0)
    wait_for(
        "the redeliveries to be handled",
        lambda: all(
            (stack.connection.hget(f"rq:job:{stack.keys.job_id(event['Id'])}", "status") or b"") == b"finished"
            for event in raised
        ),
    )

    after = component_deployments(stack, plan_of(stack, parent))
    assert [d["Id"] for d in after] == [d["Id"] for d in before]
    with stack.admin as admin:
        for title in ("Plan the release", "Deploy the components"):
            step = step_named(stack, parent, title)
            params = {"regarding": step["Id"], "eventCategories": "InterruptionSubmitted"}
            assert len(admin.get("/api/events", params=params).json()["Items"]) == 1


def staging_deployments_since(stack: Stack, parent: Doc) -> list[Doc]:
    """The component deployments to Staging created after `parent`, oldest first."""
    first = int(parent["Id"].split("-")[1])
    return [d for d in stack.deployments_since(first) if d["EnvironmentId"] == STAGING_ID]


def test_a_second_promotion_skips_what_is_already_current(stack: Stack) -> None:
    promote_to_staging(stack)
    again = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)

    assert finished_task(stack, again)["State"] == "Success"
    plan = plan_of(stack, again)
    assert [step.status for step in plan.steps] == ["skipped"] * 4
    for step in (plan.steps[0], plan.steps[1], plan.steps[3]):
        assert "already current" in (step.reason or "")
    assert staging_deployments_since(stack, again) == []


def test_a_component_past_its_limit_is_canceled_in_octopus(redis_url: str, keys: RedisKeys, tmp_path: Path) -> None:
    limited = {**PROMOTION, "promotion": {"task_check_seconds": 1, "deployment_timeout_seconds": 1}}
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=limited) as stack:
        with stack.admin as admin:
            assert admin.put("/_simulator/clock", json={"StepDurationSeconds": 6}).status_code == 200
        parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
        task = finished_task(stack, parent, timeout=120)
        plan = plan_of(stack, parent)
        database = component_deployments(stack, plan)[0]
        database_task = task_of(stack, database)
        answered = step_named(stack, parent, "Deploy the components")["Form"]["Values"]

    assert database_task["State"] == "Canceled"
    assert plan.steps[0].status == "failed"
    assert "past the limit of 1 s of running time" in (plan.steps[0].reason or "")
    assert [step.status for step in plan.steps[1:]] == ["not_run", "skipped", "not_run"]
    assert answered["Result"] == "Abort"
    assert task["State"] == "Failed"


def test_a_worker_killed_mid_promotion_leaves_nothing_twice(stack: Stack) -> None:
    with stack.admin as admin:
        assert admin.put("/_simulator/clock", json={"StepDurationSeconds": 1}).status_code == 200
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
    deploying(stack, parent, 1)  # Web API on its way
    (worker,) = stack.workers
    stack.kill_worker(worker)
    stack.workers.clear()
    stack.start_worker()

    assert finished_task(stack, parent, timeout=240)["State"] == "Success"
    created = staging_deployments_since(stack, parent)
    assert sorted(d["ProjectId"] for d in created) == sorted({d["ProjectId"] for d in created})  # one each
    assert len(created) == 3
    with stack.admin as admin:
        step = step_named(stack, parent, "Deploy the components")
        params = {"regarding": step["Id"], "eventCategories": "InterruptionSubmitted"}
        assert len(admin.get("/api/events", params=params).json()["Items"]) == 1


def test_a_parent_deployed_to_specific_machines_takes_each_component_to_those_it_targets(stack: Stack) -> None:
    machine = stack.add_machine("stg-web-77", STAGING_ID, ["web-server"])
    stack.finished_plans(1)  # its own redeploy of what Staging runs, first
    with stack.admin as admin:
        response = admin.post(
            f"/api/{SPACE_ID}/deployments",
            json={
                "ReleaseId": ORCHESTRATION_2021_3_RELEASE_ID,
                "EnvironmentId": STAGING_ID,
                "SpecificMachineIds": [machine["Id"]],
            },
        )
    if response.status_code != 201:
        pytest.fail(f"Octopus refused a parent deployment to specific machines: {response.text}")
    parent: Doc = response.json()

    assert finished_task(stack, parent)["State"] == "Success"
    plan = plan_of(stack, parent)
    assert [(step.project, step.status) for step in plan.steps] == [
        ("Database", "skipped"),
        ("Web API", "succeeded"),
        ("Scheduling Service", "skipped"),
        ("Web UI", "succeeded"),
    ]
    assert "targets" in (plan.steps[0].reason or "")
    for deployment in component_deployments(stack, plan):
        assert deployment["SpecificMachineIds"] == [machine["Id"]]


def test_the_parents_prompted_values_pass_through_by_name_and_the_promotion_is_readable(stack: Stack) -> None:
    with stack.admin as admin:
        response = admin.post(
            f"/api/{SPACE_ID}/deployments",
            json={
                "ReleaseId": ORCHESTRATION_2021_3_RELEASE_ID,
                "EnvironmentId": STAGING_ID,
                "FormValues": {ORCHESTRATION_CHANGE_REQUEST_VARIABLE_ID: "CR-4711"},
            },
        )
    assert response.status_code == 201, response.text
    parent: Doc = response.json()

    assert finished_task(stack, parent)["State"] == "Success"
    plan = plan_of(stack, parent)
    web_api = component_deployments(stack, plan)[1]
    listed = httpx.get(f"{stack.intake_url}/promotions", headers=READ_AUTH).json()["promotions"]
    one = httpx.get(f"{stack.intake_url}/promotions/{plan.id}", headers=READ_AUTH)
    refused = httpx.get(f"{stack.intake_url}/promotions/{plan.id}")

    assert web_api["FormValues"] == {WEB_API_CHANGE_REQUEST_VARIABLE_ID: "CR-4711"}
    assert [item["id"] for item in listed] == [plan.id]
    assert one.status_code == 200
    assert one.json()["notes"].startswith("## Release Orchestration 2021.3.0.1 to Staging")
    assert [step["deployment_id"] for step in one.json()["steps"]] == [step.deployment_id for step in plan.steps]
    assert refused.status_code == 401


@pytest.mark.parametrize("kept", ["Deploy the components", "Plan the release"])
def test_a_process_with_one_of_the_two_steps_plans_where_it_can(stack: Stack, kept: str) -> None:
    with stack.admin as admin:
        path = f"/api/{SPACE_ID}/deploymentprocesses/deploymentprocess-{ORCHESTRATION_ID}"
        process = admin.get(path).json()
        dropped = {"Plan the release", "Deploy the components"} - {kept}
        process["Steps"] = [step for step in process["Steps"] if step["Name"] not in dropped]
        assert admin.put(path, json=process).status_code == 200
        release = admin.post(
            f"/api/{SPACE_ID}/releases", json={"ProjectId": ORCHESTRATION_ID, "Version": "2021.3.0.2"}
        ).json()
    parent = deploy(stack, release["Id"], STAGING_ID)

    assert finished_task(stack, parent)["State"] == "Success"
    plan = plan_of(stack, parent)
    answered = step_named(stack, parent, kept)["Form"]["Values"]
    if kept == "Deploy the components":  # planned when the deploy step was raised, then deployed
        assert [(step.project, step.status) for step in plan.steps] == [(p, s) for p, s, _ in STAGED]
        assert answered["Notes"].startswith("Every component is deployed or skipped.")
    else:  # what-if: the plan and its notes, nothing deployed
        assert all(step.deployment_id is None for step in plan.steps)
        assert answered["Notes"].startswith("## Release Orchestration 2021.3.0.2 to Staging")
    assert answered["Result"] == "Proceed"


def test_a_parent_canceled_while_people_approve_ends_its_plan_with_nothing_deployed(stack: Stack) -> None:
    promote_to_staging(stack)
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, PRODUCTION_ID)
    pending(stack, parent, "QA approval")  # planned; the people have not approved yet
    with stack.admin as admin:
        assert admin.post(f"/api/tasks/{parent['TaskId']}/cancel").status_code == 200

    def ended() -> Plan | None:
        plan = plan_of(stack, parent)
        return plan if plan.status not in ("planned", "running") else None

    plan = wait_for("the plan to end", ended, timeout=60)

    assert plan.status == "failed"
    assert all(step.deployment_id is None for step in plan.steps)
    assert {step.status for step in plan.steps} <= {"not_run", "skipped"}
    assert plan.report is not None
    assert plan.report.startswith(f"{plan.id} (sample-app) for Release Orchestration 2021.3.0.1 to Production: failed")


def test_with_no_more_webhooks_the_watcher_carries_a_promotion_through_its_approvals_and_deployments(
    stack: Stack,
) -> None:
    promote_to_staging(stack)
    parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, PRODUCTION_ID)
    approvals = {title: pending(stack, parent, title) for title in ("QA approval", "Web Admins approval")}
    with stack.admin as admin:  # from here on Octopus delivers nothing the promotion needs: the watcher must see it
        (subscription,) = admin.get("/api/subscriptions/all").json()
        subscription["EventNotificationSubscription"]["Filter"]["EventCategories"] = ["MachineAdded"]
        assert admin.put(f"/api/subscriptions/{subscription['Id']}", json=subscription).status_code == 200

    answer(stack, QA_API_KEY, approvals["QA approval"])
    answer(stack, WEB_ADMIN_API_KEY, approvals["Web Admins approval"])
    answer(stack, BUSINESS_OWNER_API_KEY, pending(stack, parent, "Business Owners approval"))
    plan = deploying(stack, parent, 0)
    answer(stack, DBA_API_KEY, pending(stack, {"Id": plan.steps[0].deployment_id}, "DBA approval"))
    task = finished_task(stack, parent, timeout=120)

    assert task["State"] == "Success"
    plan = plan_of(stack, parent)
    assert [(step.project, step.status) for step in plan.steps] == [(p, s) for p, s, _ in STAGED]
    relayed = {
        (step["Title"], record.status)
        for deployment in component_deployments(stack, plan)
        for step in interruptions(stack, deployment["Id"])
        if (record := stack.approvals.load(step["Id"])) is not None and step["Title"] != "DBA approval"
    }
    assert relayed == {("QA approval", "relayed"), ("Web Admins approval", "relayed")}  # second steps too


def test_a_deployment_octopus_refuses_stops_that_component_with_octopus_s_message(stack: Stack) -> None:
    with stack.admin as admin:  # as a deployment freeze would: Octopus says no to the conductor's deployments
        fault = {"Method": "POST", "PathPattern": "/api/Spaces-*/deployments", "Status": 400, "Count": 1}
        assert admin.post("/_simulator/faults", json=fault).status_code == 201
        # The parent through the default-space route, which the fault does not match.
        created = admin.post(
            "/api/deployments", json={"ReleaseId": ORCHESTRATION_2021_3_RELEASE_ID, "EnvironmentId": STAGING_ID}
        )
        assert created.status_code == 201, created.text
        parent: Doc = created.json()

    task = finished_task(stack, parent)

    plan = plan_of(stack, parent)
    assert task["State"] == "Failed"
    assert plan.steps[0].status == "failed"
    assert (plan.steps[0].reason or "").startswith("Octopus refused the deployment: POST /api/Spaces-1/deployments:")
    assert "injected by the simulator" in (plan.steps[0].reason or "")
    assert plan.steps[0].deployment_id is None
    assert [step.status for step in plan.steps[1:]] == ["not_run", "skipped", "not_run"]
