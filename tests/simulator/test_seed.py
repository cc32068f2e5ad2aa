"""The seeds, as documented in simulator/README.md."""

from __future__ import annotations

from pathlib import Path

from simulator import seed
from simulator.seed_doc import render_seed_document
from tests.simulator.conftest import Api, ApiFactory

README = Path(__file__).resolve().parents[2] / "simulator" / "README.md"


def test_readme_seed_section_is_current() -> None:
    text = README.read_text()
    assert render_seed_document() in text, "run: python -m simulator.seed_doc and paste into simulator/README.md"


def test_every_seeded_user_has_a_working_key(api: Api) -> None:
    keys = {
        seed.ADMIN_API_KEY: seed.ADMIN_USERNAME,
        seed.CONDUCTOR_API_KEY: seed.CONDUCTOR_USERNAME,
        seed.QA_API_KEY: seed.QA_USERNAME,
        seed.WEB_ADMIN_API_KEY: seed.WEB_ADMIN_USERNAME,
        seed.BUSINESS_OWNER_API_KEY: seed.BUSINESS_OWNER_USERNAME,
        seed.DBA_API_KEY: seed.DBA_USERNAME,
        seed.VIEWER_API_KEY: seed.VIEWER_USERNAME,
    }
    for key, username in keys.items():
        assert api.as_user(key).json("/api/users/me")["Username"] == username


def test_every_environment_has_a_machine_for_each_role(api: Api) -> None:
    machines = api.json("/api/Spaces-1/machines/all")
    for environment_id in (seed.DEVELOPMENT_ID, seed.TEST_ID, seed.STAGING_ID, seed.PRODUCTION_ID):
        roles = {r for m in machines if environment_id in m["EnvironmentIds"] for r in m["Roles"]}
        assert roles == {seed.DB_ROLE, seed.WEB_ROLE, seed.APP_ROLE}
    assert all(m["HealthStatus"] == "Healthy" for m in machines)


def test_empty_seed(make_api: ApiFactory) -> None:
    api = make_api(seed="empty")
    assert api.json("/api/spaces/all")[0]["Name"] == "Default"
    assert api.json("/api/Spaces-1/projects")["TotalResults"] == 0
    assert [g["Name"] for g in api.json("/api/Spaces-1/projectgroups/all")] == ["Default Project Group"]
    assert api.as_user(seed.CONDUCTOR_API_KEY).get("/api/users/me").status_code == 401


def test_component_approvals_in_production_were_given_by_the_people_of_each_step(api: Api) -> None:
    """2021.1.0.1 in Production: each component step was answered by its team's human, with their notes."""
    people = {
        "QA approval": (seed.QA_USER_ID, "Regression suite passed."),
        "Web Admins approval": (seed.WEB_ADMIN_USER_ID, "Web farm ready."),
        "DBA approval": (seed.DBA_USER_ID, "Backup verified."),
    }
    answered = []
    for project_id in seed.COMPONENT_ORDER:
        release = api.json(f"/api/Spaces-1/projects/{project_id}/releases/2021.1.0.1")
        deployments = api.json(f"/api/Spaces-1/releases/{release['Id']}/deployments")["Items"]
        for deployment in [d for d in deployments if d["EnvironmentId"] == seed.PRODUCTION_ID]:
            for step in api.json("/api/Spaces-1/interruptions", regarding=deployment["Id"])["Items"]:
                user_id, notes = people[step["Title"]]
                assert (step["ResponsibleUserId"], step["Form"]["Values"]["Notes"]) == (user_id, notes)
                teams = {t["Id"] for t in api.json(f"/api/users/{user_id}/teams")}
                assert set(step["ResponsibleTeamIds"]) & teams
                answered.append(step["Id"])
    # Database 2, Web API 2, Scheduling Service 1 per tenant, Web UI 2.
    assert len(answered) == 8
    submitted = api.json("/api/events", eventCategories="InterruptionSubmitted", take=1000)["Items"]
    by_conductor = [e for e in submitted if e["UserId"] == seed.CONDUCTOR_USER_ID]
    assert by_conductor == []
