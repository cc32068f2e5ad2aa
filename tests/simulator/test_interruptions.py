"""Manual interventions and guided failures: holding the task, permissions, submission, events."""

from __future__ import annotations

from typing import Any

from simulator import seed
from tests.simulator.conftest import Api

INTERRUPTION_FIELDS = {
    "Id",
    "SpaceId",
    "Title",
    "Type",
    "Created",
    "IsPending",
    "Form",
    "RelatedDocumentIds",
    "ResponsibleTeamIds",
    "ResponsibleUserId",
    "CanTakeResponsibility",
    "HasResponsibility",
    "TaskId",
    "CorrelationId",
    "IsLinkedToOtherInterruption",
    "Links",
}


def _release(api: Api, project_id: str, version: str) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{project_id}/releases/{version}")["Id"])


def _production_web_api(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    deployment = api.deploy(ReleaseId=_release(api, seed.WEB_API_ID, "2021.1.0.1"), EnvironmentId=seed.PRODUCTION_ID)
    api.wait_task(deployment["TaskId"], lambda t: t["HasPendingInterruptions"])
    return deployment, api.pending_interruptions(deployment["Id"])[0]


def test_manual_intervention_holds_the_task(api: Api) -> None:
    deployment, interruption = _production_web_api(api)
    assert set(interruption) >= INTERRUPTION_FIELDS
    assert interruption["Type"] == "ManualIntervention"
    assert interruption["Title"] == "QA approval"
    assert interruption["ResponsibleTeamIds"] == [seed.QA_TEAM_ID, seed.RELEASE_MANAGEMENT_TEAM_ID]
    assert interruption["RelatedDocumentIds"] == [
        deployment["Id"],
        deployment["TaskId"],
        seed.WEB_API_ID,
        seed.PRODUCTION_ID,
    ]
    assert interruption["Form"]["Values"] == {"Instructions": None, "Notes": None, "Result": None}
    assert [e["Name"] for e in interruption["Form"]["Elements"]] == ["Instructions", "Notes", "Result"]
    task = api.task(deployment["TaskId"])
    assert (task["State"], task["PendingInterruptionTypes"]) == ("Executing", ["ManualIntervention"])
    by_task = api.pending_interruptions(deployment["TaskId"])
    assert [i["Id"] for i in by_task] == [interruption["Id"]]
    raised = api.json("/api/events", regarding=deployment["Id"], eventCategories="ManualInterventionInterruptionRaised")
    event = raised["Items"][0]
    assert event["RelatedDocumentIds"][:3] == [deployment["Id"], deployment["TaskId"], interruption["Id"]]


def test_responsibility_is_relative_to_the_caller(api: Api) -> None:
    _, interruption = _production_web_api(api)
    path = f"/api/Spaces-1/interruptions/{interruption['Id']}"
    web_admin = api.as_user(seed.WEB_ADMIN_API_KEY).json(path)
    conductor = api.as_user(seed.CONDUCTOR_API_KEY).json(path)
    assert (web_admin["CanTakeResponsibility"], conductor["CanTakeResponsibility"]) == (False, True)
    assert api.as_user(seed.WEB_ADMIN_API_KEY).put(f"{path}/responsible").status_code == 403
    taken = api.as_user(seed.CONDUCTOR_API_KEY).put(f"{path}/responsible")
    assert taken.status_code == 200
    assert taken.json()["Id"] == seed.CONDUCTOR_USER_ID
    after = api.as_user(seed.CONDUCTOR_API_KEY).json(path)
    assert (after["ResponsibleUserId"], after["HasResponsibility"]) == (seed.CONDUCTOR_USER_ID, True)
    assert api.as_user(seed.QA_API_KEY).json(path)["HasResponsibility"] is False


def test_submit_rules(api: Api) -> None:
    deployment, interruption = _production_web_api(api)
    path = f"/api/Spaces-1/interruptions/{interruption['Id']}"
    qa = api.as_user(seed.QA_API_KEY)
    conductor = api.as_user(seed.CONDUCTOR_API_KEY)
    proceed = {"Instructions": None, "Notes": "QA signed off", "Result": "Proceed"}
    assert qa.post(f"{path}/submit", proceed).status_code == 400  # nobody has taken responsibility
    assert conductor.put(f"{path}/responsible").status_code == 200
    assert qa.post(f"{path}/submit", proceed).status_code == 400  # someone else holds it
    assert qa.put(f"{path}/responsible").status_code == 200  # a team member may take it over
    missing = qa.post(f"{path}/submit", {"Notes": "no result"})
    assert missing.status_code == 400
    assert "Result" in missing.json()["Errors"][0]
    assert qa.post(f"{path}/submit", {"Result": "Maybe"}).status_code == 400
    done = qa.post(f"{path}/submit", proceed)
    assert done.status_code == 200
    body = done.json()
    assert body["IsPending"] is False
    assert body["Form"]["Values"] == proceed
    assert qa.post(f"{path}/submit", proceed).status_code == 400  # already submitted
    assert qa.put(f"{path}/responsible").status_code == 400
    events = api.json("/api/events", regardingAny=deployment["TaskId"], spaces="Spaces-1", includeSystem="true")
    submitted = [e for e in events["Items"] if e["Message"].startswith("Submitted interruption")]
    assert len(submitted) == 1
    assert (submitted[0]["UserId"], submitted[0]["Username"]) == (seed.QA_USER_ID, seed.QA_USERNAME)
    assert "QA Tester" in submitted[0]["Message"]
    assert submitted[0]["Comments"] == "QA signed off"
    # The next approval is raised once the first is through.
    next_one = api.pending_interruptions(deployment["Id"])
    assert [i["Title"] for i in next_one] == ["Web Admins approval"]


def test_administrator_may_handle_any_interruption(api: Api) -> None:
    _deployment, interruption = _production_web_api(api)
    path = f"/api/Spaces-1/interruptions/{interruption['Id']}"
    assert api.put(f"{path}/responsible").status_code == 200
    assert api.post(f"{path}/submit", {"Result": "Proceed"}).status_code == 200


def test_abort_fails_the_task(api: Api) -> None:
    deployment, interruption = _production_web_api(api)
    path = f"/api/Spaces-1/interruptions/{interruption['Id']}"
    conductor = api.as_user(seed.CONDUCTOR_API_KEY)
    conductor.put(f"{path}/responsible")
    conductor.post(f"{path}/submit", {"Notes": "stop", "Result": "Abort"})
    task = api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])
    assert (task["State"], task["HasPendingInterruptions"]) == ("Failed", False)
    assert api.pending_interruptions(deployment["Id"]) == []


def test_parallel_approvals_in_the_orchestration_project(api: Api) -> None:
    release_id = _release(api, seed.ORCHESTRATION_ID, "2021.2.0.1")
    deployment = api.deploy(ReleaseId=release_id, EnvironmentId=seed.PRODUCTION_ID)
    conductor = api.as_user(seed.CONDUCTOR_API_KEY)
    # Release Conductor's own step comes first, alone; the three approvals then run side by side.
    (planning,) = _pending_titled(api, deployment, ["Plan the release"])
    assert planning["ResponsibleTeamIds"] == [seed.RELEASE_MANAGEMENT_TEAM_ID]
    assert conductor.put(planning["Links"]["Responsible"]).status_code == 200
    assert conductor.post(planning["Links"]["Submit"], {"Result": "Proceed"}).status_code == 200
    _pending_titled(api, deployment, ["Business Owners approval", "QA approval", "Web Admins approval"])
    pending = api.pending_interruptions(deployment["Id"])
    assert sorted((i["Title"], tuple(i["ResponsibleTeamIds"])) for i in pending) == [
        ("Business Owners approval", (seed.BUSINESS_OWNERS_TEAM_ID,)),
        ("QA approval", (seed.QA_TEAM_ID,)),
        ("Web Admins approval", (seed.WEB_ADMINS_TEAM_ID,)),
    ]
    assert not any(conductor.json(i["Links"]["Self"])["CanTakeResponsibility"] for i in pending)
    for interruption, key in zip(
        sorted(pending, key=lambda i: i["Title"]),
        (seed.BUSINESS_OWNER_API_KEY, seed.QA_API_KEY, seed.WEB_ADMIN_API_KEY),
        strict=True,
    ):
        user = api.as_user(key)
        assert user.put(interruption["Links"]["Responsible"]).status_code == 200
        assert user.post(interruption["Links"]["Submit"], {"Result": "Proceed"}).status_code == 200
    (deploying,) = _pending_titled(api, deployment, ["Deploy the components"])
    assert conductor.put(deploying["Links"]["Responsible"]).status_code == 200
    assert conductor.post(deploying["Links"]["Submit"], {"Result": "Proceed"}).status_code == 200
    assert api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"


def _pending_titled(api: Api, deployment: dict[str, Any], titles: list[str]) -> list[dict[str, Any]]:
    """The deployment's pending interruptions, once they are these (by title, sorted)."""
    api.wait_task(
        deployment["TaskId"],
        lambda _: sorted(i["Title"] for i in api.pending_interruptions(deployment["Id"])) == titles,
    )
    return sorted(api.pending_interruptions(deployment["Id"]), key=lambda i: str(i["Title"]))


def test_guided_failure_retry_then_success(api: Api) -> None:
    api.control("POST", "/step-failures", {"Project": seed.WEB_API_ID, "StepName": "Deploy Web API", "Count": 1})
    release_id = _release(api, seed.WEB_API_ID, "2021.2.0.1")
    deployment = api.deploy(ReleaseId=release_id, EnvironmentId=seed.TEST_ID, UseGuidedFailure=True)
    task = api.wait_task(deployment["TaskId"], lambda t: t["HasPendingInterruptions"])
    assert task["PendingInterruptionTypes"] == ["GuidedFailure"]
    interruption = api.pending_interruptions(deployment["Id"])[0]
    assert interruption["Type"] == "GuidedFailure"
    assert interruption["Title"] == "Deploy Web API release 2021.2.0.1 to Test requires failure guidance"
    assert interruption["RelatedDocumentIds"][:2] == [deployment["TaskId"], deployment["Id"]]
    assert interruption["ResponsibleTeamIds"] == []
    buttons = [b["Value"] for b in interruption["Form"]["Elements"][2]["Control"]["Buttons"]]
    assert buttons == ["Fail", "Retry", "Ignore", "Exclude"]
    raised = api.json("/api/events", regarding=deployment["Id"], eventCategories="GuidedFailureInterruptionRaised")
    assert raised["TotalResults"] == 1
    conductor = api.as_user(seed.CONDUCTOR_API_KEY)
    conductor.put(interruption["Links"]["Responsible"])
    assert conductor.post(interruption["Links"]["Submit"], {"Notes": "x"}).status_code == 400  # Guidance required
    assert conductor.post(interruption["Links"]["Submit"], {"Guidance": "Retry"}).status_code == 200
    assert api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"


def test_guided_failure_exclude_drops_the_machines(api: Api) -> None:
    api.control("POST", "/step-failures", {"Project": seed.WEB_API_ID, "StepName": "Deploy Web API"})
    deployment = api.deploy(
        ReleaseId=_release(api, seed.WEB_API_ID, "2021.2.0.1"), EnvironmentId=seed.TEST_ID, UseGuidedFailure=True
    )
    api.wait_task(deployment["TaskId"], lambda t: t["HasPendingInterruptions"])
    interruption = api.pending_interruptions(deployment["Id"])[0]
    api.put(interruption["Links"]["Responsible"])
    api.post(interruption["Links"]["Submit"], {"Guidance": "Exclude"})
    task = api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])
    assert (task["State"], task["HasWarningsOrErrors"]) == ("Success", True)
    assert api.json(f"/api/Spaces-1/deployments/{deployment['Id']}")["DeployedToMachineIds"] == []
