"""Users, teams and team membership."""

from __future__ import annotations

from simulator import seed
from tests.simulator.conftest import Api

USER_FIELDS = {"Id", "Username", "DisplayName", "EmailAddress", "IsActive", "IsService", "Identities", "Links"}
TEAM_FIELDS = {
    "Id",
    "Name",
    "MemberUserIds",
    "ExternalSecurityGroups",
    "CanBeDeleted",
    "CanBeRenamed",
    "CanChangeMembers",
    "CanChangeRoles",
    "Description",
    "SpaceId",
    "Links",
}


def test_users_me_is_the_key_owner(api: Api) -> None:
    me = api.as_user(seed.CONDUCTOR_API_KEY).json("/api/users/me")
    assert set(me) >= USER_FIELDS
    assert me["Id"] == seed.CONDUCTOR_USER_ID
    assert me["DisplayName"] == seed.CONDUCTOR_DISPLAY_NAME
    assert me["IsService"] is True


def test_teams_list_and_fields(api: Api) -> None:
    teams = api.json("/api/teams", take=100)["Items"]
    by_name = {t["Name"]: t for t in teams}
    assert set(by_name) >= {
        "QA",
        "Web Admins",
        "Business Owners",
        "DBAs",
        "Release Management",
        "Octopus Administrators",
    }
    assert set(by_name["QA"]) >= TEAM_FIELDS
    assert by_name["Release Management"]["MemberUserIds"] == [seed.CONDUCTOR_USER_ID]
    assert by_name["Octopus Administrators"]["Id"] == "teams-administrators"


def test_team_membership_is_a_plain_array(api: Api) -> None:
    rows = api.json("/api/teammembership", userId=seed.QA_USER_ID, spaces="Spaces-1", includeSystem="true")
    assert rows == [
        {
            "UserId": seed.QA_USER_ID,
            "TeamId": seed.QA_TEAM_ID,
            "TeamName": "QA",
            "SpaceId": "Spaces-1",
            "IsDirectlyAssigned": True,
            "ExternalSecurityGroups": [],
        }
    ]
    assert api.get("/api/teammembership").status_code == 400


def test_create_user_key_and_join_a_team(api: Api) -> None:
    created = api.post("/api/users", {"Username": "new.approver", "DisplayName": "New Approver"})
    assert created.status_code == 201
    user_id = created.json()["Id"]
    key = api.post(f"/api/users/{user_id}/apikeys", {"Purpose": "tests"})
    assert key.status_code == 201
    api_key = key.json()["ApiKey"]
    assert api_key.startswith("API-")
    team = api.json(f"/api/teams/{seed.QA_TEAM_ID}")
    team["MemberUserIds"].append(user_id)
    assert api.put(f"/api/teams/{seed.QA_TEAM_ID}", team).status_code == 200
    rows = api.as_user(api_key).json("/api/teammembership", userId=user_id)
    assert [r["TeamId"] for r in rows] == [seed.QA_TEAM_ID]
