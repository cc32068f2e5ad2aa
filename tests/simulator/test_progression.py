"""Releases, progression (both routes), the dashboard and the deployment template reflect history."""

from __future__ import annotations

from typing import Any

from simulator import seed
from tests.simulator.conftest import Api


def _release(api: Api, project_id: str, version: str) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{project_id}/releases/{version}")["Id"])


def _env_items(progression: dict[str, Any], environment_id: str) -> list[tuple[str, str | None, str, bool, bool]]:
    found = []
    for entry in progression["Releases"]:
        for item in entry["Deployments"].get(environment_id, []):
            found.append(
                (item["ReleaseVersion"], item["TenantId"], item["State"], item["IsCurrent"], item["IsPrevious"])
            )
    return found


def test_releases_newest_first_search_and_lookup(api: Api) -> None:
    releases = api.json(f"/api/Spaces-1/projects/{seed.WEB_UI_ID}/releases")["Items"]
    assert [r["Version"] for r in releases] == ["2021.3.0.1", "2021.2.0.1", "2021.1.0.2", "2021.1.0.1"]
    assert set(releases[0]) >= {
        "Id",
        "Version",
        "ChannelId",
        "ProjectId",
        "SpaceId",
        "Assembled",
        "ReleaseNotes",
        "ProjectDeploymentProcessSnapshotId",
        "SelectedPackages",
        "BuildInformation",
        "Links",
    }
    searched = api.json(f"/api/Spaces-1/projects/{seed.WEB_UI_ID}/releases", searchByVersion="2021.1")["Items"]
    assert [r["Version"] for r in searched] == ["2021.1.0.2", "2021.1.0.1"]
    channel_id = releases[0]["ChannelId"]
    by_channel = api.json(f"/api/Spaces-1/channels/{channel_id}/releases", searchByVersion="1.0.2")["Items"]
    assert [r["Version"] for r in by_channel] == ["2021.1.0.2"]
    assert api.get(f"/api/Spaces-1/projects/{seed.WEB_UI_ID}/releases/9.9.9").status_code == 404
    newest = api.json("/api/Spaces-1/releases", take=1)["Items"][0]
    assert (newest["Id"], newest["Version"]) == (seed.ORCHESTRATION_2021_3_RELEASE_ID, "2021.3.0.1")


def test_create_release(api: Api) -> None:
    response = api.post("/api/Spaces-1/releases", {"ProjectId": seed.WEB_API_ID, "Version": "2021.2.0.2"})
    assert response.status_code == 201
    release = response.json()
    assert release["ChannelId"] == api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}/channels")["Items"][0]["Id"]
    newest = api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}/releases")["Items"][0]
    assert newest["Id"] == release["Id"]
    again = api.post("/api/Spaces-1/releases", {"ProjectId": seed.WEB_API_ID, "Version": "2021.2.0.2"})
    assert again.status_code == 400


def test_progression_shows_failed_current_and_last_successful(api: Api) -> None:
    new_route = api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}/progression")
    old_route = api.json(f"/api/Spaces-1/progression/{seed.WEB_API_ID}")
    assert new_route == old_route
    assert [e["Name"] for e in new_route["Environments"]] == ["Development", "Test", "Staging", "Production"]
    versions = [r["Release"]["Version"] for r in new_route["Releases"]]
    assert versions == ["2021.3.0.2", "2021.3.0.1", "2021.2.0.1", "2021.1.0.1"]
    assert new_route["Releases"][0]["NextDeployments"] == [seed.STAGING_ID]
    assert new_route["Releases"][2]["NextDeployments"] == [seed.PRODUCTION_ID]  # it failed there
    assert _env_items(new_route, seed.PRODUCTION_ID) == [
        ("2021.2.0.1", None, "Failed", True, False),
        ("2021.1.0.1", None, "Success", False, True),
    ]


def test_progression_per_tenant(api: Api) -> None:
    progression = api.json(f"/api/Spaces-1/projects/{seed.SCHEDULING_SERVICE_ID}/progression")
    assert sorted(_env_items(progression, seed.PRODUCTION_ID)) == [
        ("2021.1.0.1", seed.CONTOSO_ID, "Success", False, True),
        ("2021.1.0.1", seed.FABRIKAM_ID, "Success", True, False),
        ("2021.2.0.1", seed.CONTOSO_ID, "Success", True, False),
    ]


def test_dashboard_reflects_what_really_succeeded(api: Api) -> None:
    dashboard = api.json("/api/Spaces-1/dashboard")
    assert set(dashboard) >= {"Projects", "ProjectGroups", "Environments", "Tenants", "Items", "PreviousItems"}
    current = {
        (i["ProjectId"], i["EnvironmentId"], i["TenantId"]): (i["ReleaseVersion"], i["State"])
        for i in dashboard["Items"]
    }
    assert current[(seed.WEB_API_ID, seed.PRODUCTION_ID, None)] == ("2021.2.0.1", "Failed")
    assert current[(seed.WEB_UI_ID, seed.PRODUCTION_ID, None)] == ("2021.1.0.2", "Success")
    assert current[(seed.SCHEDULING_SERVICE_ID, seed.PRODUCTION_ID, seed.FABRIKAM_ID)] == ("2021.1.0.1", "Success")
    assert all(i["IsCurrent"] for i in dashboard["Items"])
    previous = {(i["ProjectId"], i["EnvironmentId"]): i["ReleaseVersion"] for i in dashboard["PreviousItems"]}
    assert previous[(seed.WEB_API_ID, seed.PRODUCTION_ID)] == "2021.1.0.1"
    # A new successful deployment becomes current.
    deployment = api.deploy(ReleaseId=_release(api, seed.WEB_API_ID, "2021.2.0.1"), EnvironmentId=seed.PRODUCTION_ID)
    api.wait_task(deployment["TaskId"], lambda t: t["HasPendingInterruptions"])
    api.approve_all(deployment["Id"])
    api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])
    after = api.json("/api/Spaces-1/dashboard", projectId=seed.WEB_API_ID)
    production = [i for i in after["Items"] if i["EnvironmentId"] == seed.PRODUCTION_ID]
    assert [(i["DeploymentId"], i["State"]) for i in production] == [(deployment["Id"], "Success")]


def test_deployment_template_promote_to(api: Api) -> None:
    database_new = api.json(
        f"/api/Spaces-1/releases/{_release(api, seed.DATABASE_ID, '2021.2.0.1')}/deployments/template"
    )
    assert [e["Name"] for e in database_new["PromoteTo"]] == ["Development", "Test", "Staging"]
    assert database_new["TenantPromotions"] == []
    scheduling = _release(api, seed.SCHEDULING_SERVICE_ID, "2021.2.0.1")
    template = api.json(f"/api/Spaces-1/releases/{scheduling}/deployments/template")
    promotions = {t["Name"]: [e["Name"] for e in t["PromoteTo"]] for t in template["TenantPromotions"]}
    assert promotions == {"Contoso": ["Staging", "Production"], "Fabrikam": ["Staging"]}


def test_lifecycle_preview_and_phases(api: Api) -> None:
    lifecycle = api.json(f"/api/Spaces-1/lifecycles/{seed.ORCHESTRATION_LIFECYCLE_ID}/preview")
    assert [(p["Name"], p["OptionalDeploymentTargets"]) for p in lifecycle["Phases"]] == [
        ("Staging", [seed.STAGING_ID]),
        ("Production", [seed.PRODUCTION_ID]),
    ]
    created = api.post("/api/Spaces-1/lifecycles", {"Name": "Anything goes"}).json()
    synthesized = api.json(f"/api/Spaces-1/lifecycles/{created['Id']}/preview")["Phases"]
    assert [p["Name"] for p in synthesized] == ["Development", "Test", "Staging", "Production"]
    assert api.json(f"/api/Spaces-1/lifecycles/{created['Id']}")["Phases"] == []
