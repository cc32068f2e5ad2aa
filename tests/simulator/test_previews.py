"""Deployment previews: target roles, environment scoping, tenant participation, health, disabled."""

from __future__ import annotations

from typing import Any

from simulator import seed
from tests.simulator.conftest import Api

STEP_FIELDS = {
    "ActionId",
    "ActionName",
    "ActionNumber",
    "Roles",
    "Machines",
    "MachineNames",
    "CanBeSkipped",
    "IsDisabled",
    "HasNoApplicableMachines",
    "UnavailableMachines",
    "ExcludedMachines",
}


def _latest_release(api: Api, project_id: str) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{project_id}/releases")["Items"][0]["Id"])


def _machines(preview: dict[str, Any]) -> dict[str, list[str]]:
    return {s["ActionName"]: [m["Name"] for m in s["Machines"]] for s in preview["StepsToExecute"]}


def test_new_web_server_is_a_target_of_web_api_and_web_ui_only(api: Api) -> None:
    body = {"Name": "prod-web-09", "EnvironmentIds": [seed.PRODUCTION_ID], "Roles": ["web-server"]}
    machine_id = api.post("/api/Spaces-1/machines", body).json()["Id"]
    reached = {}
    for project_id in seed.COMPONENT_ORDER:
        release_id = _latest_release(api, project_id)
        preview = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.PRODUCTION_ID}")
        assert set(preview["StepsToExecute"][0]) >= STEP_FIELDS
        ids = {m["Id"] for s in preview["StepsToExecute"] for m in s["Machines"]}
        reached[project_id] = machine_id in ids
    assert reached == {
        seed.DATABASE_ID: False,
        seed.WEB_API_ID: True,
        seed.SCHEDULING_SERVICE_ID: False,
        seed.WEB_UI_ID: True,
    }


def test_roles_and_environment_scoping(api: Api) -> None:
    release_id = _latest_release(api, seed.WEB_API_ID)
    production = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.PRODUCTION_ID}")
    assert _machines(production) == {
        "QA approval": [],
        "Web Admins approval": [],
        "Deploy Web API": ["prod-web-01", "prod-web-02"],
    }
    step = production["StepsToExecute"][2]
    assert step["Roles"] == ["web-server"]
    assert step["ActionNumber"] == "3"
    assert production["StepsToExecute"][0]["CanBeSkipped"] is False  # responsible teams make it required
    staging = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.STAGING_ID}")
    assert _machines(staging) == {"Deploy Web API": ["stg-web-01"]}  # approvals are scoped to Production


def test_tenant_participation(api: Api) -> None:
    release_id = _latest_release(api, seed.SCHEDULING_SERVICE_ID)
    base = f"/api/Spaces-1/releases/{release_id}/deployments/preview"
    contoso = api.json(f"{base}/{seed.PRODUCTION_ID}/{seed.CONTOSO_ID}")
    fabrikam = api.json(f"{base}/{seed.PRODUCTION_ID}/{seed.FABRIKAM_ID}")
    untenanted = api.json(f"{base}/{seed.PRODUCTION_ID}")
    assert _machines(contoso)["Deploy Scheduling Service"] == ["prod-app-contoso-01"]
    assert _machines(fabrikam)["Deploy Scheduling Service"] == ["prod-app-fabrikam-01"]
    untenanted_step = untenanted["StepsToExecute"][1]
    assert untenanted_step["Machines"] == []
    assert untenanted_step["HasNoApplicableMachines"] is True
    # stg-app-01 is TenantedOrUntenanted: reached with or without a tenant.
    assert _machines(api.json(f"{base}/{seed.STAGING_ID}"))["Deploy Scheduling Service"] == ["stg-app-01"]
    assert _machines(api.json(f"{base}/{seed.STAGING_ID}/{seed.FABRIKAM_ID}"))["Deploy Scheduling Service"] == [
        "stg-app-01"
    ]


def test_tenanted_previews_by_post(api: Api) -> None:
    release_id = _latest_release(api, seed.SCHEDULING_SERVICE_ID)
    body = {
        "DeploymentPreviews": [
            {"EnvironmentId": seed.PRODUCTION_ID, "TenantId": seed.CONTOSO_ID},
            {"EnvironmentId": seed.PRODUCTION_ID, "TenantId": seed.FABRIKAM_ID},
        ]
    }
    previews = api.post(f"/api/Spaces-1/releases/{release_id}/deployments/previews", body).json()
    assert [_machines(p)["Deploy Scheduling Service"] for p in previews] == [
        ["prod-app-contoso-01"],
        ["prod-app-fabrikam-01"],
    ]
    not_connected = api.get(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.TEST_ID}/{seed.CONTOSO_ID}")
    assert not_connected.status_code == 400


def test_disabled_machines_are_left_out_and_unhealthy_ones_are_unavailable(api: Api) -> None:
    web1 = api.json("/api/Spaces-1/machines", name="prod-web-01")["Items"][0]
    web2 = api.json("/api/Spaces-1/machines", name="prod-web-02")["Items"][0]
    web1["IsDisabled"] = True
    api.put(f"/api/Spaces-1/machines/{web1['Id']}", web1)
    api.control("PUT", f"/machines/{web2['Id']}/health", {"HealthStatus": "Unhealthy"})
    release_id = _latest_release(api, seed.WEB_UI_ID)
    step = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.PRODUCTION_ID}")["StepsToExecute"][
        2
    ]
    assert step["Machines"] == []
    assert step["UnavailableMachines"] == [{"Id": web2["Id"], "Name": "prod-web-02"}]
