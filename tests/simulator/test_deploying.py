"""Creating deployments: the resource, validation 400s, and which machines a deployment reaches."""

from __future__ import annotations

from simulator import seed
from tests.simulator.conftest import Api

DEPLOYMENT_FIELDS = {
    "Id",
    "SpaceId",
    "Name",
    "ReleaseId",
    "EnvironmentId",
    "TenantId",
    "ProjectId",
    "ChannelId",
    "DeploymentProcessId",
    "ManifestVariableSetId",
    "TaskId",
    "Created",
    "DeployedBy",
    "DeployedById",
    "DeployedToMachineIds",
    "SpecificMachineIds",
    "ExcludedMachineIds",
    "SkipActions",
    "ForcePackageDownload",
    "ForcePackageRedeployment",
    "UseGuidedFailure",
    "FailureEncountered",
    "FormValues",
    "Comments",
    "Changes",
    "ChangesMarkdown",
    "QueueTime",
    "QueueTimeExpiry",
    "Links",
}


def _release(api: Api, project_id: str, version: str) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{project_id}/releases/{version}")["Id"])


def _machine(api: Api, name: str) -> str:
    return str(api.json("/api/Spaces-1/machines", name=name)["Items"][0]["Id"])


def test_create_returns_201_with_octopus_fields_and_links(api: Api) -> None:
    release_id = _release(api, seed.WEB_API_ID, "2021.2.0.1")
    response = api.post(
        "/api/Spaces-1/deployments",
        {"ReleaseId": release_id, "EnvironmentId": seed.STAGING_ID, "Comments": "from a test"},
    )
    assert response.status_code == 201
    deployment = response.json()
    assert set(deployment) >= DEPLOYMENT_FIELDS
    assert deployment["Name"] == "Deploy to Staging (#2)"  # 2021.2.0.1 already went to Staging once
    assert deployment["ProjectId"] == seed.WEB_API_ID
    assert deployment["TaskId"].startswith("ServerTasks-")
    assert deployment["Links"]["Task"] == f"/api/tasks/{deployment['TaskId']}"
    assert deployment["Links"]["Interruptions"] == f"/api/Spaces-1/interruptions?regarding={deployment['Id']}"
    assert deployment["DeployedBy"] == seed.ADMIN_USERNAME
    task = api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])
    assert task["State"] == "Success"
    assert task["Arguments"] == {"DeploymentId": deployment["Id"]}
    assert api.json(f"/api/Spaces-1/deployments/{deployment['Id']}")["DeployedToMachineIds"] == [
        _machine(api, "stg-web-01")
    ]


def test_specific_and_excluded_machines(api: Api) -> None:
    release_id = _release(api, seed.WEB_UI_ID, "2021.1.0.2")
    web1, web2 = _machine(api, "stg-web-01"), None
    extra = api.post(
        "/api/Spaces-1/machines", {"Name": "stg-web-02", "EnvironmentIds": [seed.STAGING_ID], "Roles": ["web-server"]}
    ).json()
    web2 = extra["Id"]
    only_new = api.deploy(ReleaseId=release_id, EnvironmentId=seed.STAGING_ID, SpecificMachineIds=[web2])
    assert only_new["DeployedToMachineIds"] == [web2]
    not_first = api.deploy(ReleaseId=release_id, EnvironmentId=seed.STAGING_ID, ExcludedMachineIds=[web1])
    assert not_first["DeployedToMachineIds"] == [web2]


def test_specific_machine_that_no_step_targets_deploys_nothing_and_succeeds(api: Api) -> None:
    release_id = _release(api, seed.DATABASE_ID, "2021.1.0.1")
    web = _machine(api, "stg-web-01")
    deployment = api.deploy(ReleaseId=release_id, EnvironmentId=seed.STAGING_ID, SpecificMachineIds=[web])
    assert deployment["DeployedToMachineIds"] == []
    assert api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"])["State"] == "Success"


def test_tenanted_deployment_reaches_the_tenants_machines(api: Api) -> None:
    release_id = _release(api, seed.SCHEDULING_SERVICE_ID, "2021.2.0.1")
    deployment = api.deploy(ReleaseId=release_id, EnvironmentId=seed.STAGING_ID, TenantId=seed.FABRIKAM_ID)
    assert deployment["TenantId"] == seed.FABRIKAM_ID
    assert deployment["DeployedToMachineIds"] == [_machine(api, "stg-app-01")]


def _errors(api: Api, body: dict[str, object]) -> list[str]:
    response = api.post("/api/Spaces-1/deployments", body)
    assert response.status_code == 400, response.text
    assert response.json()["ErrorMessage"] == "There was a problem with your request."
    errors: list[str] = response.json()["Errors"]
    return errors


def test_validation_errors(api: Api) -> None:
    web_api_new = _release(api, seed.WEB_API_ID, "2021.2.0.1")
    database_new = _release(api, seed.DATABASE_ID, "2021.2.0.1")
    scheduling = _release(api, seed.SCHEDULING_SERVICE_ID, "2021.2.0.1")
    orchestration = _release(api, seed.ORCHESTRATION_ID, "2021.2.0.1")
    assert "does not exist" in _errors(api, {"ReleaseId": "Releases-999", "EnvironmentId": seed.TEST_ID})[0]
    assert "does not exist" in _errors(api, {"ReleaseId": web_api_new, "EnvironmentId": "Environments-99"})[0]
    assert "ReleaseId" in _errors(api, {"EnvironmentId": seed.TEST_ID})[0]
    # Database 2021.2.0.1 has not been to Staging yet, so Production is out of reach.
    assert "earlier phases" in _errors(api, {"ReleaseId": database_new, "EnvironmentId": seed.PRODUCTION_ID})[0]
    # The orchestration lifecycle has only Staging and Production.
    assert "not part of the lifecycle" in _errors(api, {"ReleaseId": orchestration, "EnvironmentId": seed.TEST_ID})[0]
    assert (
        "does not allow tenanted"
        in _errors(api, {"ReleaseId": web_api_new, "EnvironmentId": seed.STAGING_ID, "TenantId": seed.CONTOSO_ID})[0]
    )
    assert (
        "not connected to the environment"
        in _errors(api, {"ReleaseId": scheduling, "EnvironmentId": seed.TEST_ID, "TenantId": seed.CONTOSO_ID})[0]
    )
    prod_web = _machine(api, "prod-web-01")
    assert (
        "is not in the environment"
        in _errors(api, {"ReleaseId": web_api_new, "EnvironmentId": seed.STAGING_ID, "SpecificMachineIds": [prod_web]})[
            0
        ]
    )
    process = api.json(f"/api/Spaces-1/deploymentprocesses/deploymentprocess-{seed.WEB_API_ID}")
    qa_action = process["Steps"][0]["Actions"][0]["Id"]
    assert (
        "cannot be skipped"
        in _errors(api, {"ReleaseId": web_api_new, "EnvironmentId": seed.PRODUCTION_ID, "SkipActions": [qa_action]})[0]
    )


def test_deployment_list_filters_newest_first(api: Api) -> None:
    items = api.json("/api/Spaces-1/deployments", projects=seed.WEB_API_ID, environments=seed.PRODUCTION_ID)["Items"]
    assert [d["Name"] for d in items] == ["Deploy to Production", "Deploy to Production"]
    assert items[0]["ReleaseId"] == _release(api, seed.WEB_API_ID, "2021.2.0.1")
    failed = api.json("/api/Spaces-1/deployments", taskState="Failed")["Items"]
    assert {d["ProjectId"] for d in failed} == {seed.WEB_API_ID, seed.WEB_UI_ID}
    tenanted = api.json("/api/Spaces-1/deployments", tenants=seed.FABRIKAM_ID)["Items"]
    assert {d["TenantId"] for d in tenanted} == {seed.FABRIKAM_ID}
