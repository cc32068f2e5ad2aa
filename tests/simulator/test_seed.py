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
    by_conductor = {
        api.json(f"/api/Spaces-1/interruptions/{interruption}")["Title"]
        for e in submitted
        if e["UserId"] == seed.CONDUCTOR_USER_ID
        for interruption in e["RelatedDocumentIds"]
        if interruption.startswith("Interruptions-")
    }
    assert by_conductor == {"Plan the release", "Deploy the components"}  # its own steps in the parent, no others


def _current(api: Api, project_id: str, environment_id: str) -> str | None:
    """The version of the newest successful deployment of the project to the environment (untenanted)."""
    tasks = api.json(
        "/api/tasks", project=project_id, environment=environment_id, name="Deploy", states="Success", take=1
    )["Items"]
    if not tasks:
        return None
    deployment = api.json(f"/api/Spaces-1/deployments/{tasks[0]['Arguments']['DeploymentId']}")
    return str(api.json(f"/api/Spaces-1/releases/{deployment['ReleaseId']}")["Version"])


def test_the_2021_3_cycle_is_in_development_and_test_not_yet_in_staging(api: Api) -> None:
    expected = {
        seed.DATABASE_ID: (seed.DATABASE_2021_3_RELEASE_ID, "2021.3.0.1", "2021.1.0.1"),
        seed.WEB_API_ID: (seed.WEB_API_2021_3_RELEASE_ID, seed.WEB_API_2021_3_VERSION, "2021.2.0.1"),
        seed.WEB_UI_ID: (seed.WEB_UI_2021_3_RELEASE_ID, "2021.3.0.1", "2021.1.0.2"),
    }
    for project_id, (release_id, version, staging) in expected.items():
        assert api.json(f"/api/Spaces-1/projects/{project_id}/releases/{version}")["Id"] == release_id
        assert _current(api, project_id, seed.DEVELOPMENT_ID) == version
        assert _current(api, project_id, seed.TEST_ID) == version
        assert _current(api, project_id, seed.STAGING_ID) == staging
        template = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/template")
        assert seed.STAGING_ID in [e["Id"] for e in template["PromoteTo"]]
    scheduling = api.json(f"/api/Spaces-1/projects/{seed.SCHEDULING_SERVICE_ID}/releases")["Items"]
    assert not [r for r in scheduling if r["Version"].startswith("2021.3.")]
    orchestration = api.json(f"/api/Spaces-1/releases/{seed.ORCHESTRATION_2021_3_RELEASE_ID}")
    assert (orchestration["ProjectId"], orchestration["Version"]) == (seed.ORCHESTRATION_ID, seed.CYCLE_2021_3_VERSION)
    assert api.json(f"/api/Spaces-1/releases/{orchestration['Id']}/deployments")["Items"] == []
    for (release_id, environment_id), deployment_id in seed.CYCLE_2021_3_DEPLOYMENT_IDS.items():
        deployment = api.json(f"/api/Spaces-1/deployments/{deployment_id}")
        assert (deployment["ReleaseId"], deployment["EnvironmentId"]) == (release_id, environment_id)
        assert api.task(deployment["TaskId"])["State"] == "Success"


def test_the_hotfix_channel_skips_its_optional_test_phase(api: Api) -> None:
    lifecycle = api.json(f"/api/Spaces-1/lifecycles/{seed.HOTFIX_LIFECYCLE_ID}")
    assert [(p["Name"], p["IsOptionalPhase"]) for p in lifecycle["Phases"]] == [
        ("Development", False),
        ("Test", True),
        ("Staging", False),
        ("Production", False),
    ]
    channel = api.json(f"/api/Spaces-1/channels/{seed.DATABASE_HOTFIX_CHANNEL_ID}")
    assert (channel["ProjectId"], channel["LifecycleId"], channel["IsDefault"]) == (
        seed.DATABASE_ID,
        seed.HOTFIX_LIFECYCLE_ID,
        False,
    )
    hotfix = api.json(f"/api/Spaces-1/releases/{seed.DATABASE_HOTFIX_RELEASE_ID}")
    assert (hotfix["Version"], hotfix["ChannelId"]) == (seed.DATABASE_HOTFIX_VERSION, seed.DATABASE_HOTFIX_CHANNEL_ID)
    deployments = api.json(f"/api/Spaces-1/releases/{hotfix['Id']}/deployments")["Items"]
    assert [d["EnvironmentId"] for d in deployments] == [seed.DEVELOPMENT_ID]
    template = api.json(f"/api/Spaces-1/releases/{hotfix['Id']}/deployments/template")
    assert [e["Id"] for e in template["PromoteTo"]] == [seed.DEVELOPMENT_ID, seed.TEST_ID, seed.STAGING_ID]
    staging = api.deploy(ReleaseId=hotfix["Id"], EnvironmentId=seed.STAGING_ID)
    assert api.wait_task(staging["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"
