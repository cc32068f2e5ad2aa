"""The summary of an ended plan: each component's release, deployment, task, outcome and duration, the
approvals relayed into it and by whom, what was left to people or skipped and why; as JSON and as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.approval_records import ApprovalRelay, Approver, CoveringApproval
from workers.notify_summary import render_text, summarize
from workers.plans import ParentDeployment, Plan, PlanStep

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def promotion() -> Plan:
    return Plan(
        id="promotion-Deployments-90",
        kind="promotion",
        parent=ParentDeployment(
            deployment_id="Deployments-90",
            task_id="ServerTasks-90",
            project="Release Orchestration",
            release_version="2021.3.0.1",
            environment="Production",
            tenant="Acme",
            answer="Abort",
        ),
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id="Environments-4",
        tenant_id="Tenants-1",
        machine_ids=[],
        steps=[
            PlanStep(
                project="Database",
                status="skipped",
                reason="already current",
                release_version="2021.3.0.7",
                finished_at=at(1),
            ),
            PlanStep(
                project="Web API",
                status="succeeded",
                release_version="2021.3.0.4",
                from_version="2021.2.0.9",
                deployment_id="Deployments-91",
                task_id="ServerTasks-91",
                started_at=at(2),
                finished_at=at(62.5),
            ),
            PlanStep(
                project="Web UI",
                status="failed",
                reason="Deployments-92 ended Failed: step 2 failed",
                release_version="2021.3.0.2",
                deployment_id="Deployments-92",
                task_id="ServerTasks-92",
                started_at=at(63),
                finished_at=at(90),
            ),
        ],
        status="failed",
        report="promotion-Deployments-90 (sample-app) ...: failed",
        created_at=START,
        finished_at=at(91),
    )


def relay(deployment_id: str, status: str, **extra: object) -> ApprovalRelay:
    return ApprovalRelay.model_validate(
        {
            "interruption_id": f"Interruptions-{deployment_id}-{status}",
            "space_id": "Spaces-1",
            "orchestration": "sample-app",
            "step": "Approve the web release",
            "project": "Web API",
            "release_id": "Releases-1",
            "release_version": "2021.3.0.4",
            "environment_id": "Environments-4",
            "environment": "Production",
            "tenant_id": "Tenants-1",
            "tenant": "Acme",
            "deployment_id": deployment_id,
            "task_id": "ServerTasks-91",
            "status": status,
            **extra,
        }
    )


def covered_by_amy() -> CoveringApproval:
    return CoveringApproval(
        kind="ordered_by_parent",
        project="Release Orchestration",
        release_version="2021.3.0.1",
        environment="Production",
        tenant="Acme",
        deployment_id="Deployments-90",
        task_id="ServerTasks-90",
        interruption_id="Interruptions-7",
        step="Web Admins approve",
        result="Proceed",
        approver=Approver(user_id="Users-3", username="amy", display_name="Amy Admin", team="Web Admins"),
        approved_at=at(0),
        link="https://octopus.example/app#/tasks/ServerTasks-90",
    )


def test_the_summary_holds_each_component_with_its_approvals_and_reasons() -> None:
    relays = [
        relay("Deployments-91", "relayed", covered_by=covered_by_amy(), result="Proceed", finished_at=at(30)),
        relay("Deployments-92", "refused", reason="a guided failure is left to people"),
        relay("Deployments-55", "relayed", covered_by=covered_by_amy()),  # another plan's deployment
    ]
    summary = summarize(promotion(), relays, directory=None)
    data = summary.model_dump(mode="json")["data"]
    assert summary.timestamp == at(91)
    assert (data["outcome"], data["duration_seconds"], data["environment"], data["tenant"]) == (
        "failed",
        91.0,
        {"id": "Environments-4", "name": "Production"},
        {"id": "Tenants-1", "name": "Acme"},
    )
    assert data["parent"] == {
        "deployment": "Deployments-90",
        "project": "Release Orchestration",
        "release": "2021.3.0.1",
        "answer": "Abort",
    }
    database, web_api, web_ui = data["components"]
    assert (database["outcome"], database["reason"], database["deployment"], database["duration_seconds"]) == (
        "skipped",
        "already current",
        None,
        None,
    )
    assert (web_api["release"], web_api["from_release"], web_api["task"], web_api["duration_seconds"]) == (
        "2021.3.0.4",
        "2021.2.0.9",
        "ServerTasks-91",
        60.5,
    )
    assert web_api["approvals_relayed"] == [
        {
            "step": "Approve the web release",
            "result": "Proceed",
            "approved_by": "amy",
            "approver_display_name": "Amy Admin",
            "approver_team": "Web Admins",
            "given_in": "Deployments-90",
            "relayed_at": "2026-12-01T12:00:30Z",
        }
    ]
    assert web_ui["left_to_people"] == [
        {"step": "Approve the web release", "reason": "a guided failure is left to people"}
    ]
    assert web_ui["approvals_relayed"] == []

    subject, text = render_text(summary)
    assert subject == "[Release Conductor] sample-app: promotion to Production for Acme failed"
    assert "Database 2021.3.0.7: skipped\n  why: already current" in text
    assert (
        "Web API 2021.3.0.4 (from 2021.2.0.9): succeeded\n  deployment Deployments-91, task ServerTasks-91, 60 s"
        in text
    )
    assert (
        "approval relayed at 'Approve the web release': Proceed by Amy Admin (amy, Web Admins) in Deployments-90"
        in text
    )
    assert "left to people at 'Approve the web release': a guided failure is left to people" in text
    assert "Parent deployment Deployments-90, answered Abort." in text


def test_a_plan_still_running_has_no_summary() -> None:
    plan = promotion().model_copy(update={"status": "running", "finished_at": None})
    with pytest.raises(ValueError, match="has not ended"):
        summarize(plan, [], directory=None)
