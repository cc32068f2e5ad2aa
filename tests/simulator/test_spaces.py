"""The second space of the sample seed: the same names with ids of its own, space-scoped routes that see only their
space, team membership by space with system teams, and an intervention a system team's member may answer."""

from __future__ import annotations

from typing import Any

from simulator import seed
from tests.simulator.conftest import Api

PAYMENTS = seed.PAYMENTS_SPACE_ID


def _membership(api: Api, user_id: str, spaces: str, include_system: str) -> list[tuple[str, Any]]:
    rows = api.json("/api/teammembership", userId=user_id, spaces=spaces, includeSystem=include_system)
    return [(row["TeamId"], row["SpaceId"]) for row in rows]


def test_the_second_space_has_the_same_environment_names_with_ids_of_its_own(api: Api) -> None:
    assert [(s["Id"], s["Name"]) for s in api.json("/api/spaces/all")] == [
        (seed.SPACE_ID, seed.SPACE_NAME),
        (PAYMENTS, seed.PAYMENTS_SPACE_NAME),
    ]
    default = {e["Name"]: e["Id"] for e in api.json(f"/api/{seed.SPACE_ID}/environments/all")}
    payments = {e["Name"]: e["Id"] for e in api.json(f"/api/{PAYMENTS}/environments/all")}

    assert set(default) == set(payments) == {"Development", "Test", "Staging", "Production"}
    assert payments["Staging"] == seed.PAYMENTS_STAGING_ID
    assert not set(default.values()) & set(payments.values())


def test_space_scoped_routes_see_only_their_space(api: Api) -> None:
    assert [p["Name"] for p in api.json(f"/api/{PAYMENTS}/projects/all")] == ["Payments Service"]
    assert "Payments Service" not in {p["Name"] for p in api.json(f"/api/{seed.SPACE_ID}/projects/all")}
    assert api.get(f"/api/{seed.SPACE_ID}/projects/{seed.PAYMENTS_SERVICE_ID}").status_code == 404
    assert api.get(f"/api/{seed.SPACE_ID}/releases/{seed.PAYMENTS_SERVICE_RELEASE_ID}").status_code == 404
    deployed = api.json(f"/api/{PAYMENTS}/deployments", projects=seed.PAYMENTS_SERVICE_ID, taskState="Success")
    assert {d["EnvironmentId"] for d in deployed["Items"]} == {seed.PAYMENTS_DEVELOPMENT_ID, seed.PAYMENTS_TEST_ID}
    assert all(d["SpaceId"] == PAYMENTS for d in deployed["Items"])


def test_team_membership_by_space_includes_system_teams_only_when_asked(api: Api) -> None:
    security, conductor = seed.SECURITY_USER_ID, seed.CONDUCTOR_USER_ID

    assert _membership(api, security, PAYMENTS, "true") == [(seed.SECURITY_TEAM_ID, None)]
    assert _membership(api, security, PAYMENTS, "false") == []
    assert _membership(api, conductor, PAYMENTS, "true") == [(seed.PAYMENTS_RELEASE_MANAGEMENT_TEAM_ID, PAYMENTS)]
    assert _membership(api, seed.QA_USER_ID, PAYMENTS, "true") == []
    assert _membership(api, seed.PAYMENTS_DEVELOPER_USER_ID, seed.SPACE_ID, "true") == []


def test_a_system_teams_member_answers_an_intervention_of_the_second_space(api: Api) -> None:
    body = {"ReleaseId": seed.PAYMENTS_SERVICE_RELEASE_ID, "EnvironmentId": seed.PAYMENTS_STAGING_ID}
    response = api.post(f"/api/{PAYMENTS}/deployments", body)
    assert response.status_code == 201, response.text
    deployment = response.json()
    assert deployment["SpaceId"] == PAYMENTS
    api.wait_task(deployment["TaskId"], lambda task: task["HasPendingInterruptions"])
    (step,) = api.json(f"/api/{PAYMENTS}/interruptions", regarding=deployment["Id"], pendingOnly="true")["Items"]
    assert step["Title"] == "Security approval"
    assert step["ResponsibleTeamIds"] == [seed.SECURITY_TEAM_ID, seed.PAYMENTS_RELEASE_MANAGEMENT_TEAM_ID]
    assert api.get(f"/api/{seed.SPACE_ID}/interruptions/{step['Id']}").status_code == 404

    base = f"/api/{PAYMENTS}/interruptions/{step['Id']}"
    assert api.as_user(seed.QA_API_KEY).put(f"{base}/responsible").status_code == 403
    officer = api.as_user(seed.SECURITY_API_KEY)
    assert officer.put(f"{base}/responsible").status_code == 200
    assert officer.post(f"{base}/submit", {"Notes": "Reviewed.", "Result": "Proceed"}).status_code == 200

    assert api.wait_task(deployment["TaskId"], lambda task: task["IsCompleted"])["State"] == "Success"
    submitted = api.json("/api/events", regardingAny=deployment["TaskId"], spaces=PAYMENTS, includeSystem="true")
    assert any(event["UserId"] == seed.SECURITY_USER_ID for event in submitted["Items"])
    assert api.json("/api/events", regardingAny=deployment["TaskId"], spaces=seed.SPACE_ID)["Items"] == []
