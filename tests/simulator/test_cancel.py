"""Canceling a task: Canceled at once, TaskCanceled by the caller, DeploymentFailed, interruptions closed."""

from __future__ import annotations

from simulator import seed
from tests.simulator.conftest import Api


def test_canceling_a_parent_waiting_on_approvals_writes_task_canceled_and_deployment_failed(api: Api) -> None:
    orchestration = api.json(f"/api/Spaces-1/projects/{seed.ORCHESTRATION_ID}/releases/2021.1.0.1")
    deployment = api.deploy(ReleaseId=orchestration["Id"], EnvironmentId=seed.PRODUCTION_ID)
    api.wait_task(deployment["TaskId"], lambda t: t["HasPendingInterruptions"])
    newest = api.json("/api/events", take=1)["Items"][0]["Id"]
    conductor = api.as_user(seed.CONDUCTOR_API_KEY)
    assert conductor.post(f"/api/tasks/{deployment['TaskId']}/cancel").status_code == 200

    task = api.task(deployment["TaskId"])
    assert (task["State"], task["IsCompleted"], task["HasPendingInterruptions"]) == ("Canceled", True, False)
    since = int(newest.split("-")[1]) + 1
    events = api.json("/api/events", regarding=deployment["Id"], fromAutoId=since)["Items"]
    assert [e["Category"] for e in reversed(events)] == ["TaskCanceled", "DeploymentFailed"]
    canceled, failed = events[1], events[0]
    assert canceled["UserId"] == seed.CONDUCTOR_USER_ID
    assert canceled["Message"] == (
        f"{task['Description']} was canceled by {seed.CONDUCTOR_DISPLAY_NAME} ({seed.CONDUCTOR_USERNAME})"
    )
    assert canceled["RelatedDocumentIds"][:2] == [deployment["TaskId"], deployment["Id"]]
    assert failed["UserId"] == "users-system"
    assert failed["Message"].startswith("Deploy to Production (#2) failed for Release Orchestration release 2021.1.0.1")
    assert api.pending_interruptions(deployment["Id"]) == []
    by_category = api.json("/api/events", eventCategories="TaskCanceled", regardingAny=deployment["TaskId"])
    assert [e["Id"] for e in by_category["Items"]] == [canceled["Id"]]


def test_canceling_a_finished_task_writes_nothing(api: Api) -> None:
    deployment = api.json("/api/Spaces-1/deployments", take=1)["Items"][0]
    before = api.json("/api/events", take=1)["Items"][0]["Id"]
    assert api.post(f"/api/tasks/{deployment['TaskId']}/cancel").status_code == 200
    assert api.task(deployment["TaskId"])["State"] == "Success"
    assert api.json("/api/events", take=1)["Items"][0]["Id"] == before
