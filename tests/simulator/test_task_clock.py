"""Server tasks on the clock: states, durations, failures, cancel, concurrency and the task list."""

from __future__ import annotations

import time

from simulator import seed
from tests.simulator.conftest import Api, ApiFactory

TASK_FIELDS = {
    "Id",
    "SpaceId",
    "Name",
    "Description",
    "Arguments",
    "State",
    "Completed",
    "QueueTime",
    "QueueTimeExpiry",
    "StartTime",
    "LastUpdatedTime",
    "CompletedTime",
    "ServerNode",
    "Duration",
    "ErrorMessage",
    "HasBeenPickedUpByProcessor",
    "IsCompleted",
    "FinishedSuccessfully",
    "HasPendingInterruptions",
    "PendingInterruptionTypes",
    "HasWarningsOrErrors",
    "CanRerun",
    "Links",
}


def _release(api: Api, project_id: str, version: str) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{project_id}/releases/{version}")["Id"])


def test_queued_then_executing_then_success_on_the_clock(make_api: ApiFactory) -> None:
    api = make_api(queue_delay=0.3, step_duration=0.3)
    deployment = api.deploy(ReleaseId=_release(api, seed.WEB_API_ID, "2021.2.0.1"), EnvironmentId=seed.TEST_ID)
    task = api.task(deployment["TaskId"])
    assert set(task) >= TASK_FIELDS
    assert task["State"] == "Queued"
    assert task["Name"] == "Deploy"
    assert task["Description"] == "Deploy Web API release 2021.2.0.1 to Test"
    assert task["Links"]["Self"] == f"/api/tasks/{task['Id']}"
    executing = api.wait_task(task["Id"], lambda t: t["State"] != "Queued")
    assert executing["State"] == "Executing"
    assert executing["IsCompleted"] is False
    assert executing["HasBeenPickedUpByProcessor"] is True
    done = api.wait_task(task["Id"], lambda t: t["IsCompleted"])
    assert (done["State"], done["FinishedSuccessfully"], done["ErrorMessage"]) == ("Success", True, "")
    assert done["CompletedTime"] >= done["StartTime"] >= done["QueueTime"]
    categories = [e["Category"] for e in api.json("/api/events", regarding=deployment["Id"])["Items"]]
    assert categories == ["DeploymentSucceeded", "DeploymentStarted", "DeploymentQueued"]


def test_named_step_fails_for_the_next_deployment_only(api: Api) -> None:
    rule = api.control(
        "POST", "/step-failures", {"Project": "Web UI", "StepName": "Deploy Web UI", "Environment": "Staging"}
    )
    assert rule.status_code == 201
    release_id = _release(api, seed.WEB_UI_ID, "2021.1.0.2")
    first = api.deploy(ReleaseId=release_id, EnvironmentId=seed.STAGING_ID)
    failed = api.wait_task(first["TaskId"], lambda t: t["IsCompleted"])
    assert (failed["State"], failed["FinishedSuccessfully"], failed["HasWarningsOrErrors"]) == ("Failed", False, True)
    assert failed["ErrorMessage"]
    failed_event = api.json("/api/events", regarding=first["Id"], eventCategories="DeploymentFailed")["Items"][0]
    assert failed_event["RelatedDocumentIds"] == [
        first["Id"],
        seed.WEB_UI_ID,
        release_id,
        seed.STAGING_ID,
        first["TaskId"],
        first["ChannelId"],
    ]
    assert failed_event["Message"].startswith("Deploy to Staging (#2) failed for Web UI release 2021.1.0.2")
    second = api.deploy(ReleaseId=release_id, EnvironmentId=seed.STAGING_ID)
    assert api.wait_task(second["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"
    assert api.control("GET", "/step-failures").json()[0]["Remaining"] == 0


def test_a_step_failure_may_name_the_release_it_fails(api: Api) -> None:
    failure = {"Project": "Web UI", "StepName": "Deploy Web UI", "Environment": "Staging", "Release": "2021.1.0.2"}
    assert api.control("POST", "/step-failures", failure).status_code == 201
    unknown = api.control("POST", "/step-failures", {**failure, "Release": "9.9.9"})

    other = api.deploy(ReleaseId=_release(api, seed.WEB_UI_ID, "2021.1.0.1"), EnvironmentId=seed.STAGING_ID)
    named = api.deploy(ReleaseId=_release(api, seed.WEB_UI_ID, "2021.1.0.2"), EnvironmentId=seed.STAGING_ID)

    assert api.wait_task(other["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"
    assert api.wait_task(named["TaskId"], lambda t: t["IsCompleted"])["State"] == "Failed"
    assert unknown.status_code == 400
    assert "has no release '9.9.9'" in unknown.text


def test_cancel(make_api: ApiFactory) -> None:
    api = make_api(queue_delay=5)
    deployment = api.deploy(ReleaseId=_release(api, seed.WEB_API_ID, "2021.2.0.1"), EnvironmentId=seed.TEST_ID)
    response = api.post(f"/api/tasks/{deployment['TaskId']}/cancel")
    assert response.status_code == 200
    task = api.task(deployment["TaskId"])
    assert (task["State"], task["IsCompleted"], task["FinishedSuccessfully"]) == ("Canceled", True, False)


def test_one_deployment_per_project_environment_at_a_time(api: Api) -> None:
    release_id = _release(api, seed.WEB_API_ID, "2021.1.0.1")
    first = api.deploy(ReleaseId=release_id, EnvironmentId=seed.PRODUCTION_ID)
    api.wait_task(first["TaskId"], lambda t: t["HasPendingInterruptions"])
    second = api.deploy(ReleaseId=release_id, EnvironmentId=seed.PRODUCTION_ID)
    time.sleep(0.2)
    assert api.task(second["TaskId"])["State"] == "Queued"
    api.approve_all(first["Id"])
    assert api.wait_task(first["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"
    api.wait_task(second["TaskId"], lambda t: t["HasPendingInterruptions"])


def test_scheduled_queue_time(api: Api) -> None:
    queue_time = "2099-01-01T00:00:00.000+00:00"
    deployment = api.deploy(
        ReleaseId=_release(api, seed.WEB_API_ID, "2021.2.0.1"), EnvironmentId=seed.TEST_ID, QueueTime=queue_time
    )
    time.sleep(0.1)
    task = api.task(deployment["TaskId"])
    assert (task["State"], task["QueueTime"]) == ("Queued", queue_time)


def test_task_list_filters(api: Api) -> None:
    base = {"name": "Deploy", "spaces": "Spaces-1", "includeSystem": "false"}
    page = api.json(
        "/api/tasks", **base, project=seed.WEB_API_ID, environment=seed.PRODUCTION_ID, states="Success", take=100
    )
    assert page["TotalResults"] == 1
    deployment = api.json(f"/api/Spaces-1/deployments/{page['Items'][0]['Arguments']['DeploymentId']}")
    assert deployment["ReleaseId"] == _release(api, seed.WEB_API_ID, "2021.1.0.1")
    assert page["TotalCounts"] == {"Success": 1, "Failed": 1}
    tenant = api.json(
        "/api/tasks",
        **base,
        project=seed.SCHEDULING_SERVICE_ID,
        environment=seed.PRODUCTION_ID,
        tenant=seed.FABRIKAM_ID,
        states="Success",
    )
    assert len(tenant["Items"]) == 1
    failed = api.json("/api/tasks", states="Failed,Canceled")["Items"]
    assert {t["Description"] for t in failed} == {
        "Deploy Web API release 2021.2.0.1 to Production",
        "Deploy Web UI release 2021.2.0.1 to Test",
    }
    newest_first = [t["Id"] for t in api.json("/api/tasks", take=5)["Items"]]
    assert newest_first == sorted(newest_first, key=lambda i: int(i.split("-")[1]), reverse=True)
    assert api.json("/api/tasks", name="Health", spaces="Spaces-1", take=1)["TotalResults"] == 14
    space_form = api.json(f"/api/Spaces-1/tasks/{newest_first[0]}")
    assert space_form["Id"] == newest_first[0]
    details = api.json(f"/api/tasks/{newest_first[0]}/details")
    assert details["Task"]["Id"] == newest_first[0]


def test_the_list_of_deployments_in_flight_in_a_space(make_api: ApiFactory) -> None:
    """What the task watcher asks for stuck deployments and exclusion groups: Executing and Cancelling deploy
    tasks of one space, whether waiting on a person or not; not queued, not finished, not health checks."""
    api = make_api(queue_delay=0, step_duration=30)
    running = api.deploy(ReleaseId=_release(api, seed.DATABASE_ID, "2021.3.0.1"), EnvironmentId=seed.TEST_ID)
    waiting = api.deploy(ReleaseId=_release(api, seed.WEB_UI_ID, "2021.1.0.2"), EnvironmentId=seed.PRODUCTION_ID)
    queued = api.deploy(ReleaseId=_release(api, seed.DATABASE_ID, "2021.3.0.1"), EnvironmentId=seed.TEST_ID)
    api.wait_task(waiting["TaskId"], lambda t: t["HasPendingInterruptions"])
    api.wait_task(running["TaskId"], lambda t: t["State"] == "Executing")
    query = {"name": "Deploy", "states": "Executing,Cancelling", "take": 1000}

    listed = api.json("/api/tasks", spaces=seed.SPACE_ID, **query)
    elsewhere = api.json("/api/tasks", spaces="Spaces-99", **query)

    assert [task["Id"] for task in listed["Items"]] == [waiting["TaskId"], running["TaskId"]]  # newest first
    assert listed["TotalResults"] == 2
    assert api.task(queued["TaskId"])["State"] == "Queued"  # behind the one running in Test
    assert elsewhere["Items"] == []
