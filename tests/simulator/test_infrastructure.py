"""Environments, machines (created with POST, enabled/disabled, health) and tenants."""

from __future__ import annotations

import time

from simulator import seed
from tests.simulator.conftest import Api, ApiFactory

MACHINE_FIELDS = {
    "Id",
    "Name",
    "Slug",
    "SpaceId",
    "Roles",
    "EnvironmentIds",
    "TenantIds",
    "TenantTags",
    "TenantedDeploymentParticipation",
    "IsDisabled",
    "HealthStatus",
    "Status",
    "StatusSummary",
    "HasLatestCalamari",
    "IsInProcess",
    "MachinePolicyId",
    "Endpoint",
    "Links",
}


def _events(api: Api, machine_id: str) -> list[str]:
    return [e["Category"] for e in reversed(api.json("/api/events", regarding=machine_id)["Items"])]


def test_create_machine_writes_machine_added_then_healthy(api: Api) -> None:
    body = {
        "Name": "prod-web-07",
        "EnvironmentIds": [seed.PRODUCTION_ID],
        "Roles": ["web-server"],
        "Endpoint": {"CommunicationStyle": "TentaclePassive", "Uri": "https://web-07:10933/", "Thumbprint": "ABC"},
    }
    response = api.post("/api/Spaces-1/machines", body)
    assert response.status_code == 201
    machine = response.json()
    assert set(machine) >= MACHINE_FIELDS
    assert machine["Id"].startswith("Machines-")
    assert machine["TenantedDeploymentParticipation"] == "Untenanted"
    assert machine["Links"]["Self"] == f"/api/Spaces-1/machines/{machine['Id']}"
    deadline = time.monotonic() + 5
    while api.json(f"/api/machines/{machine['Id']}")["HealthStatus"] != "Healthy":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert _events(api, machine["Id"]) == ["MachineAdded", "MachineHealthy"]
    added = api.json("/api/events", regarding=machine["Id"], eventCategories="MachineAdded")["Items"][0]
    assert added["RelatedDocumentIds"] == [machine["Id"], seed.PRODUCTION_ID]
    assert added["UserId"] == seed.ADMIN_USER_ID


def test_tenanted_machine_events_name_the_tenants(api: Api) -> None:
    body = {
        "Name": "prod-app-contoso-02",
        "EnvironmentIds": [seed.PRODUCTION_ID],
        "Roles": ["app-server"],
        "TenantIds": [seed.CONTOSO_ID],
        "SkipInitialHealthCheck": True,
    }
    machine = api.post("/api/Spaces-1/machines", body).json()
    assert machine["TenantedDeploymentParticipation"] == "Tenanted"
    event = api.json("/api/events", regarding=machine["Id"])["Items"][0]
    assert event["RelatedDocumentIds"] == [machine["Id"], seed.PRODUCTION_ID, seed.CONTOSO_ID]
    assert machine["HealthStatus"] == "Unknown"


def test_machine_validation(api: Api) -> None:
    missing = api.post("/api/Spaces-1/machines", {"Name": "x"})
    assert missing.status_code == 400
    assert len(missing.json()["Errors"]) == 2
    bad_env = api.post("/api/Spaces-1/machines", {"Name": "x", "EnvironmentIds": ["Environments-99"], "Roles": ["r"]})
    assert bad_env.status_code == 400
    duplicate = api.post(
        "/api/Spaces-1/machines", {"Name": "prod-web-01", "EnvironmentIds": [seed.PRODUCTION_ID], "Roles": ["r"]}
    )
    assert duplicate.status_code == 400


def test_disable_and_enable_write_events(api: Api) -> None:
    machine = api.json("/api/Spaces-1/machines", name="prod-web-02")["Items"][0]
    machine["IsDisabled"] = True
    assert api.put(f"/api/Spaces-1/machines/{machine['Id']}", machine).json()["IsDisabled"] is True
    machine["IsDisabled"] = False
    assert api.put(f"/api/Spaces-1/machines/{machine['Id']}", machine).json()["IsDisabled"] is False
    assert _events(api, machine["Id"])[-2:] == ["MachineDisabled", "MachineEnabled"]


def test_role_change_writes_deployment_related_property_event(api: Api) -> None:
    machine = api.json("/api/Spaces-1/machines", name="test-web-01")["Items"][0]
    machine["Roles"] = ["web-server", "app-server"]
    api.put(f"/api/Spaces-1/machines/{machine['Id']}", machine)
    assert _events(api, machine["Id"])[-1] == "MachineDeploymentRelatedPropertyWasUpdated"


def test_control_surface_sets_health(api: Api) -> None:
    machine = api.json("/api/Spaces-1/machines", name="prod-web-01")["Items"][0]
    response = api.control("PUT", f"/machines/{machine['Id']}/health", {"HealthStatus": "Unavailable"})
    assert response.json()["HealthStatus"] == "Unavailable"
    api.control("PUT", f"/machines/{machine['Id']}/health", {"HealthStatus": "Healthy"})
    assert _events(api, machine["Id"])[-2:] == ["MachineUnavailable", "MachineHealthy"]
    assert api.control("PUT", f"/machines/{machine['Id']}/health", {"HealthStatus": "Bad"}).status_code == 400


def test_machine_list_filters(api: Api) -> None:
    web = api.json("/api/Spaces-1/machines", roles="web-server", environmentIds=seed.PRODUCTION_ID)["Items"]
    assert [m["Name"] for m in web] == ["prod-web-01", "prod-web-02"]
    tenanted = api.json("/api/Spaces-1/machines", tenantIds=seed.FABRIKAM_ID)["Items"]
    assert [m["Name"] for m in tenanted] == ["stg-app-01", "prod-app-fabrikam-01"]
    in_env = api.json(f"/api/Spaces-1/environments/{seed.STAGING_ID}/machines")["Items"]
    assert [m["Name"] for m in in_env] == ["stg-db-01", "stg-web-01", "stg-app-01"]


def test_tenants_and_project_environments(api: Api) -> None:
    tenants = api.json("/api/Spaces-1/tenants", projectId=seed.SCHEDULING_SERVICE_ID)["Items"]
    assert [t["Name"] for t in tenants] == ["Contoso", "Fabrikam"]
    assert tenants[0]["ProjectEnvironments"] == {seed.SCHEDULING_SERVICE_ID: [seed.STAGING_ID, seed.PRODUCTION_ID]}
    refused = api.post(
        "/api/Spaces-1/tenants", {"Name": "Northwind", "ProjectEnvironments": {seed.WEB_API_ID: [seed.PRODUCTION_ID]}}
    )
    assert refused.status_code == 400  # Web API is untenanted


def test_many_machines_are_cheap(make_api: ApiFactory) -> None:
    api = make_api(health_check_delay=0)
    started = time.monotonic()
    for number in range(100):
        body = {"Name": f"bulk-{number:03d}", "EnvironmentIds": [seed.PRODUCTION_ID], "Roles": ["web-server"]}
        assert api.post("/api/Spaces-1/machines", body).status_code == 201
    assert time.monotonic() - started < 5
    assert api.json("/api/Spaces-1/machines", partialName="bulk-", take=1)["TotalResults"] == 100
