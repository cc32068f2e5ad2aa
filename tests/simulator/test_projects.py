"""Project groups, projects, processes and channels."""

from __future__ import annotations

import time

from simulator import seed
from tests.simulator.conftest import Api, ApiFactory

PROJECT_FIELDS = {
    "Id",
    "Name",
    "Slug",
    "SpaceId",
    "Description",
    "ProjectGroupId",
    "LifecycleId",
    "DeploymentProcessId",
    "VariableSetId",
    "TenantedDeploymentMode",
    "DefaultGuidedFailureMode",
    "IsDisabled",
    "Links",
}


def test_project_shape_and_slug_lookup(api: Api) -> None:
    project = api.json(f"/api/Spaces-1/projects/{seed.SCHEDULING_SERVICE_ID}")
    assert set(project) >= PROJECT_FIELDS
    assert project["TenantedDeploymentMode"] == "TenantedOrUntenanted"
    assert project["DeploymentProcessId"] == f"deploymentprocess-{seed.SCHEDULING_SERVICE_ID}"
    assert set(project["Links"]) >= {"Self", "Releases", "Channels", "DeploymentProcess", "Progression"}
    assert api.json("/api/Spaces-1/projects/scheduling-service")["Id"] == seed.SCHEDULING_SERVICE_ID


def test_process_steps_roles_and_manual_interventions(api: Api) -> None:
    process = api.json(f"/api/Spaces-1/deploymentprocesses/deploymentprocess-{seed.DATABASE_ID}")
    assert [s["Name"] for s in process["Steps"]] == ["QA approval", "DBA approval", "Deploy Database"]
    deploy = process["Steps"][2]
    assert deploy["Properties"]["Octopus.Action.TargetRoles"] == "db-server"
    approval = process["Steps"][1]["Actions"][0]
    assert approval["ActionType"] == "Octopus.Manual"
    assert approval["Environments"] == [seed.PRODUCTION_ID]
    assert approval["Properties"]["Octopus.Action.Manual.ResponsibleTeamIds"] == (
        f"{seed.DBAS_TEAM_ID},{seed.RELEASE_MANAGEMENT_TEAM_ID}"
    )


def test_create_project_with_process_and_channel_then_deploy(api: Api) -> None:
    created = api.post(
        "/api/Spaces-1/projects",
        {"Name": "Reports", "ProjectGroupId": seed.DEFAULT_PROJECT_GROUP_ID, "LifecycleId": seed.DEFAULT_LIFECYCLE_ID},
    )
    assert created.status_code == 201
    project = created.json()
    channels = api.json(f"/api/Spaces-1/projects/{project['Id']}/channels")["Items"]
    assert [(c["Name"], c["IsDefault"], c["LifecycleId"]) for c in channels] == [("Default", True, None)]
    process = api.json(project["Links"]["DeploymentProcess"])
    process["Steps"] = [
        {
            "Name": "Deploy Reports",
            "Properties": {"Octopus.Action.TargetRoles": "web-server"},
            "Actions": [
                {
                    "Name": "Deploy Reports",
                    "ActionType": "Octopus.Script",
                    "ExcludedEnvironments": [seed.DEVELOPMENT_ID],
                }
            ],
        },
    ]
    updated = api.put(project["Links"]["DeploymentProcess"], process)
    assert updated.status_code == 200
    assert updated.json()["Version"] == process["Version"] + 1
    assert api.put(project["Links"]["DeploymentProcess"], process).status_code == 400  # stale Version
    release = api.post("/api/Spaces-1/releases", {"ProjectId": project["Id"], "Version": "1.0.0"}).json()
    development = api.deploy(ReleaseId=release["Id"], EnvironmentId=seed.DEVELOPMENT_ID)
    assert development["DeployedToMachineIds"] == []  # the step is excluded from Development
    assert (
        api.post(
            "/api/Spaces-1/projects", {"Name": "Reports", "ProjectGroupId": seed.DEFAULT_PROJECT_GROUP_ID}
        ).status_code
        == 400
    )


def test_channel_scoped_action(api: Api) -> None:
    channel = api.post("/api/Spaces-1/channels", {"Name": "Hotfix", "ProjectId": seed.WEB_API_ID}).json()
    process = api.json(f"/api/Spaces-1/deploymentprocesses/deploymentprocess-{seed.WEB_API_ID}")
    process["Steps"].append(
        {"Name": "Hotfix notice", "Actions": [{"Name": "Hotfix notice", "Channels": [channel["Id"]]}]}
    )
    api.put(process["Links"]["Self"], process)
    hotfix = api.post(
        "/api/Spaces-1/releases",
        {"ProjectId": seed.WEB_API_ID, "Version": "2021.2.1-hotfix", "ChannelId": channel["Id"]},
    ).json()
    normal = api.post("/api/Spaces-1/releases", {"ProjectId": seed.WEB_API_ID, "Version": "2021.2.1"}).json()

    def steps(r: str) -> list[str]:
        return [
            s["ActionName"]
            for s in api.json(f"/api/Spaces-1/releases/{r}/deployments/preview/{seed.DEVELOPMENT_ID}")["StepsToExecute"]
        ]

    assert steps(hotfix["Id"]) == ["Deploy Web API", "Hotfix notice"]
    assert steps(normal["Id"]) == ["Deploy Web API"]


def test_two_hundred_projects_through_the_api(make_api: ApiFactory) -> None:
    api = make_api(seed="empty")
    group = api.json("/api/Spaces-1/projectgroups/all")[0]["Id"]
    started = time.monotonic()
    for number in range(200):
        body = {"Name": f"Service {number:03d}", "ProjectGroupId": group}
        assert api.post("/api/Spaces-1/projects", body).status_code == 201
    assert time.monotonic() - started < 10
    page = api.json("/api/Spaces-1/projects", skip=180)
    assert (page["TotalResults"], len(page["Items"])) == (200, 20)
