"""A promotion's policies end to end (issue 17): a failed component rolls back what the promotion deployed, and a
component deploys only where the versions it requires run. The seeded simulator over HTTP, a worker process,
real Redis; Staging runs Database 2021.1.0.1, Web API 2021.2.0.1 and Web UI 2021.1.0.2 before the promotion, and
Production runs 2021.1.0.1 of Database and Web API, approved by people at each of their manual interventions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from service.status import read_status, render
from simulator.seed import (
    BUSINESS_OWNER_API_KEY,
    DBA_API_KEY,
    ORCHESTRATION_2021_3_RELEASE_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    SPACE_ID,
    STAGING_ID,
    WEB_ADMIN_API_KEY,
)
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tokens import READ_AUTH
from tests.test_promotion_e2e import (
    FAST_LOOKS,
    PROMOTION,
    answer,
    deploy,
    finished_task,
    interruptions,
    pending,
    promote_to_staging,
    step_named,
    task_of,
)
from workers.approval_binding import ApprovalBindings
from workers.keys import RedisKeys
from workers.plans import Plan

pytestmark = pytest.mark.slow

Doc = dict[str, Any]
ROLLBACK = {**PROMOTION, "on_failure": "rollback"}


def fail_next(stack: Stack, project: str, release: str | None = None) -> None:
    """The next run of the project's deploy step in Staging (of that release, if named) fails, as the simulator's
    control surface allows."""
    failure = {"Project": project, "StepName": f"Deploy {project}", "Environment": "Staging", "Count": 1}
    if release is not None:
        failure["Release"] = release
    with stack.admin as admin:
        assert admin.post("/_simulator/step-failures", json=failure).status_code == 201


def plan_of(stack: Stack, parent: Doc) -> Plan:
    plan = stack.plans.load(f"promotion-{parent['Id']}")
    assert plan is not None
    return plan


def plan_deploying(stack: Stack, parent: Doc, index: int) -> str:
    """The deployment of the parent's component at `index`, once it has one."""

    def probe() -> str | None:
        plan = stack.plans.load(f"promotion-{parent['Id']}")
        return plan.steps[index].deployment_id if plan is not None and plan.steps[index].task_id else None

    return wait_for(f"component {index} deploying", probe, timeout=90)


def created_since(stack: Stack, parent: Doc) -> list[Doc]:
    """The component deployments to Staging made after the parent, oldest first, with their release versions."""
    first = int(parent["Id"].split("-")[1])
    found = [d for d in stack.deployments_since(first) if d["EnvironmentId"] == STAGING_ID]
    with stack.admin as admin:
        for deployment in found:
            deployment["Version"] = admin.get(f"/api/{SPACE_ID}/releases/{deployment['ReleaseId']}").json()["Version"]
            deployment["Project"] = admin.get(f"/api/{SPACE_ID}/projects/{deployment['ProjectId']}").json()["Name"]
    return found


def outline(plan: Plan) -> list[tuple[str, str, str | None, int | None]]:
    return [(step.project, step.status, step.release_version, step.rollback_of) for step in plan.steps]


def test_a_failure_with_rollback_redeploys_the_earlier_components_previous_releases_in_reverse_order(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=ROLLBACK) as stack:
        fail_next(stack, "Web UI")
        parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
        parent_task = finished_task(stack, parent)
        plan = plan_of(stack, parent)
        created = created_since(stack, parent)
        tasks = [task_of(stack, deployment) for deployment in created]
        answered = step_named(stack, parent, "Deploy the components")["Form"]["Values"]
        bindings = ApprovalBindings(stack.connection, keys.prefix)
        rollback_bindings = [bindings.load(f"{plan.id}/{index}") for index in (4, 5)]
        listed = httpx.get(f"{stack.intake_url}/plans/{plan.id}", headers=READ_AUTH).json()
        status = render(read_status(stack.connection, keys))

    assert outline(plan) == [
        ("Database", "succeeded", "2021.3.0.1", None),
        ("Web API", "succeeded", "2021.3.0.2", None),
        ("Scheduling Service", "skipped", None, None),
        ("Web UI", "failed", "2021.3.0.1", None),
        ("Web API", "succeeded", "2021.2.0.1", 1),  # newest first, each to the release it replaced
        ("Database", "succeeded", "2021.1.0.1", 0),
    ]
    assert [(d["Project"], d["Version"]) for d in created] == [
        ("Database", "2021.3.0.1"),
        ("Web API", "2021.3.0.2"),
        ("Web UI", "2021.3.0.1"),
        ("Web API", "2021.2.0.1"),
        ("Database", "2021.1.0.1"),
    ]
    assert [task["State"] for task in tasks] == ["Success", "Success", "Failed", "Success", "Success"]
    for earlier, later in zip(tasks, created[1:], strict=False):
        assert earlier["CompletedTime"] <= later["Created"]  # one after the other, the rollback after the failure
    assert [step.deployment_id for step in plan.steps[4:]] == [d["Id"] for d in created[3:]]
    assert [(b.kind, b.release_id) for b in rollback_bindings if b] == [
        ("redeploy", created[3]["ReleaseId"]),  # bound as a redeploy: never the parent's approvals
        ("redeploy", created[4]["ReleaseId"]),
    ]
    assert plan.status == "failed"
    assert (answered["Result"], parent_task["State"]) == ("Abort", "Failed")
    assert answered["Notes"].startswith(
        "Web UI failed; not deployed: nothing else.\nRolled back: Web API to 2021.2.0.1, Database to 2021.1.0.1.\n"
    )
    assert [step["rollback_of"] for step in listed["steps"]] == [None, None, None, None, 1, 0]
    assert f"{'Web API (rollback)':<24} succeeded  2021.2.0.1 {created[3]['Id']}" in status
    assert "Database (rollback): succeeded 2021.1.0.1" in (plan.report or "")


def test_a_rollback_that_fails_is_reported_and_the_rest_left_to_people(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=ROLLBACK) as stack:
        fail_next(stack, "Web UI")
        fail_next(stack, "Web API", release="2021.2.0.1")  # the forward Web API succeeds, its rollback fails
        parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
        finished_task(stack, parent)
        plan = plan_of(stack, parent)
        created = created_since(stack, parent)
        rollback_task = task_of(stack, created[-1])
        answered = step_named(stack, parent, "Deploy the components")["Form"]["Values"]
        live = httpx.get(f"{stack.intake_url}/live/status", headers=READ_AUTH).text

    assert outline(plan)[4:] == [("Web API", "failed", "2021.2.0.1", 1), ("Database", "not_run", "2021.1.0.1", 0)]
    assert [(d["Project"], d["Version"]) for d in created] == [
        ("Database", "2021.3.0.1"),
        ("Web API", "2021.3.0.2"),
        ("Web UI", "2021.3.0.1"),
        ("Web API", "2021.2.0.1"),  # once: a failed rollback is not tried again, nor is Database rolled back
    ]
    assert rollback_task["State"] == "Failed"  # failed in the plan once Octopus ended it
    assert (plan.steps[4].reason or "").startswith(f"{created[-1]['Id']} ended Failed")
    assert plan.steps[5].reason == "left to people: the rollback of Web API failed"
    assert answered["Result"] == "Abort"
    notes = answered["Notes"].splitlines()
    assert notes[:2] == ["Web UI failed; not deployed: nothing else.", "Rolled back: nothing."]
    assert notes[2].startswith(f"Rollback failed: Web API to 2021.2.0.1 ({created[-1]['Id']} ended Failed")
    assert notes[3] == "Not rolled back: Database (left to people: the rollback of Web API failed)."
    assert 'data-component="Web API" data-state="failed" data-rollback="true"' in live
    assert 'data-component="Database" data-state="not_run" data-rollback="true"' in live


REQUIRING: list[dict[str, Any]] = [
    {"project": "Database", "requires": {"project": "Web UI", "version": ">=2021.3.0"}, "unmet": "skip"},
    {"project": "Web API"},
    {"project": "Scheduling Service"},
    {"project": "Web UI", "requires": [{"project": "Web API", "version": ">=2021.3.0,<2022"}]},
]


def test_an_unmet_requirement_skips_with_its_reason_and_one_met_by_an_earlier_step_proceeds(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(
        redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=PROMOTION, components=REQUIRING
    ) as stack:
        parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, STAGING_ID)
        parent_task = finished_task(stack, parent)
        plan = plan_of(stack, parent)
        created = created_since(stack, parent)

    assert [(step.project, step.status) for step in plan.steps] == [
        ("Database", "skipped"),
        ("Web API", "succeeded"),
        ("Scheduling Service", "skipped"),
        ("Web UI", "succeeded"),
    ]
    assert plan.steps[0].reason == (
        "requires Web UI >=2021.3.0: Web UI 2021.1.0.2 (running in Staging) is not in that range (unmet: skip)"
    )
    # Staging ran Web API 2021.2.0.1 before: only the promotion's own earlier step meets the range.
    assert plan.steps[3].requirements_met == "Web API 2021.3.0.2 (deployed by this promotion) meets >=2021.3.0,<2022"
    assert [(d["Project"], d["Version"]) for d in created] == [("Web API", "2021.3.0.2"), ("Web UI", "2021.3.0.1")]
    assert parent_task["State"] == "Success"


def test_in_production_a_rollback_reuses_peoples_earlier_approvals_of_the_earlier_releases(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=ROLLBACK) as stack:
        promote_to_staging(stack)
        with stack.admin as admin:
            failure = {"Project": "Web UI", "StepName": "Deploy Web UI", "Environment": "Production", "Count": 1}
            assert admin.post("/_simulator/step-failures", json=failure).status_code == 201
        parent = deploy(stack, ORCHESTRATION_2021_3_RELEASE_ID, PRODUCTION_ID)
        for title, key in (("QA approval", QA_API_KEY), ("Web Admins approval", WEB_ADMIN_API_KEY)):
            answer(stack, key, pending(stack, parent, title))
        answer(stack, BUSINESS_OWNER_API_KEY, pending(stack, parent, "Business Owners approval"))
        database = plan_deploying(stack, parent, 0)
        answer(stack, DBA_API_KEY, pending(stack, {"Id": database}, "DBA approval"))  # no DBA approved the parent
        parent_task = finished_task(stack, parent, timeout=120)
        plan = plan_of(stack, parent)
        relayed = {
            (step.project, interruption["Title"]): stack.approvals.load(interruption["Id"])
            for step in plan.steps[4:]
            for interruption in interruptions(stack, str(step.deployment_id))
        }

    assert outline(plan)[3:] == [
        ("Web UI", "failed", "2021.3.0.1", None),
        ("Web API", "succeeded", "2021.1.0.1", 1),
        ("Database", "succeeded", "2021.1.0.1", 0),
    ]
    assert parent_task["State"] == "Failed"
    assert set(relayed) == {
        ("Web API", "QA approval"),
        ("Web API", "Web Admins approval"),
        ("Database", "QA approval"),
        ("Database", "DBA approval"),
    }
    for (project, title), record in relayed.items():
        assert record is not None
        assert record.status == "relayed", (project, title, record.reason)
        assert record.covered_by is not None
        covering = record.covered_by
        # A person's answer at that very step of the earlier release in Production, never the parent's.
        assert (covering.kind, covering.project, covering.release_version) == (
            "earlier_approval",
            project,
            "2021.1.0.1",
        )
        assert (covering.environment, covering.step) == ("Production", title)
        assert covering.deployment_id != parent["Id"]
        assert covering.approver.username in ("qa.tester", "web.admin", "db.admin")
