"""Tag sets, tenant tags on tenants and machines, the tenant tag filter, and tag-based targeting."""

from __future__ import annotations

from typing import Any

import pytest

from simulator import seed
from tests.simulator.conftest import Api

SCHEDULING = "Deploy Scheduling Service"


def _tag_set(api: Api, name: str, *tags: str) -> Any:
    response = api.post("/api/Spaces-1/tagsets", {"Name": name, "Tags": [{"Name": t} for t in tags]})
    assert response.status_code == 201, response.text
    return response.json()


def _tenant(api: Api, name: str, *tags: str) -> str:
    response = api.post("/api/Spaces-1/tenants", {"Name": name, "TenantTags": list(tags)})
    assert response.status_code == 201, response.text
    return str(response.json()["Id"])


def _names(api: Api, path: str, tags: str) -> set[str]:
    found = api.json(path, tags=tags)
    items = found if isinstance(found, list) else found["Items"]
    return {t["Name"] for t in items}


def test_the_seed_has_the_hosting_tag_set_and_tagged_tenants(api: Api) -> None:
    hosting = api.json(f"/api/Spaces-1/tagsets/{seed.HOSTING_TAG_SET_ID}")
    assert (hosting["Name"], hosting["SpaceId"]) == (seed.HOSTING_TAG_SET_NAME, seed.SPACE_ID)
    assert [(t["Id"], t["CanonicalTagName"]) for t in hosting["Tags"]] == [
        (seed.SHARED_TAG_ID, seed.SHARED_TAG),
        (seed.DEDICATED_TAG_ID, seed.DEDICATED_TAG),
    ]
    assert set(hosting["Tags"][0]) == {"Id", "Name", "CanonicalTagName", "Color", "Description", "SortOrder"}
    assert hosting["Links"]["Self"] == f"/api/Spaces-1/tagsets/{seed.HOSTING_TAG_SET_ID}"
    for tenant_id, tags in seed.TENANT_TAGS.items():
        assert api.json(f"/api/Spaces-1/tenants/{tenant_id}")["TenantTags"] == tags
    assert api.json("/api")["Links"]["TagSets"].startswith("/api/Spaces-1/tagsets{/id}")


def test_tag_sets_are_a_paged_collection_an_array_and_documents(api: Api) -> None:
    created = _tag_set(api, "Release Ring", "Early", "Stable")
    assert created["Id"] == "TagSets-2"
    assert [t["CanonicalTagName"] for t in created["Tags"]] == ["Release Ring/Early", "Release Ring/Stable"]
    assert [t["SortOrder"] for t in created["Tags"]] == [0, 1]
    assert created["Tags"][0]["Id"].startswith("TagSets-2/Tags-")
    page = api.json("/api/Spaces-1/tagsets", take=1)
    assert (page["ItemType"], page["TotalResults"], page["NumberOfPages"]) == ("TagSet", 2, 2)
    assert [s["Name"] for s in page["Items"]] == ["Hosting"]
    assert "Page.Next" in page["Links"]
    assert [s["Id"] for s in api.json("/api/Spaces-1/tagsets/all")] == [seed.HOSTING_TAG_SET_ID, "TagSets-2"]
    assert [s["Name"] for s in api.json("/api/tagsets", partialName="ring")["Items"]] == ["Release Ring"]
    assert api.json("/api/Spaces-1/tagsets/TagSets-2") == created
    missing = api.get("/api/Spaces-1/tagsets/TagSets-99")
    assert (missing.status_code, missing.json()["ErrorMessage"]) == (404, "The resource 'TagSets-99' was not found.")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"Name": "Hosting", "Tags": [{"Name": "Cloud"}]}, "A tag set with the name 'Hosting' already exists"),
        ({"Name": "Region", "Tags": [{"Name": "EU, West"}]}, "may not contain ',' or '/'"),
        ({"Name": "Region", "Tags": [{"Name": "EU"}, {"Name": "eu"}]}, "names a tag more than once"),
        ({"Tags": []}, "The Name field is required."),
    ],
)
def test_a_bad_tag_set_is_refused_and_uses_no_id(api: Api, body: dict[str, Any], reason: str) -> None:
    response = api.post("/api/Spaces-1/tagsets", body)
    assert response.status_code == 400
    assert any(reason in error for error in response.json()["Errors"]), response.json()
    assert _tag_set(api, "Later", "One")["Id"] == "TagSets-2"


def test_only_administrators_create_tag_sets(api: Api) -> None:
    response = api.as_user(seed.CONDUCTOR_API_KEY).post("/api/Spaces-1/tagsets", {"Name": "Region"})
    assert response.status_code == 403
    assert response.json()["ErrorMessage"].endswith("Missing permission: TagSetCreate")


def test_tenant_filter_ors_within_a_tag_set_and_ands_across_tag_sets(api: Api) -> None:
    """The table of OctopusDeploy/Issues #8088, on /tenants and /tenants/all."""
    _tag_set(api, "Continent", "Australia", "NorthAmerica", "Europe")
    _tag_set(api, "Ring", "Alpha", "Beta", "Main")
    _tenant(api, "Tenant A", "Continent/Australia", "Ring/Alpha", "Ring/Main")
    _tenant(api, "Tenant B", "Continent/Australia", "Ring/Beta")
    _tenant(api, "Tenant C", "Continent/Europe", "Ring/Alpha")
    expected = {
        "Continent/Australia,Ring/Beta": {"Tenant B"},
        "Continent/Australia,Ring/Alpha,Ring/Beta": {"Tenant A", "Tenant B"},
        "Continent/Australia,Ring/Main,Ring/Beta": {"Tenant A", "Tenant B"},
        "Continent/Europe": {"Tenant C"},
        "Continent/Europe,Ring/Beta": set(),
        "Ring/Alpha": {"Tenant A", "Tenant C"},
    }
    for tags, names in expected.items():
        assert _names(api, "/api/Spaces-1/tenants", tags) == names, tags
        assert _names(api, "/api/Spaces-1/tenants/all", tags) == names, tags
    assert _names(api, "/api/Spaces-1/tenants", seed.SHARED_TAG) == {"Fabrikam"}
    assert _names(api, "/api/Spaces-1/tenants/all", "Hosting/Nothing") == set()
    everyone = {"Contoso", "Fabrikam", "Tenant A", "Tenant B", "Tenant C"}
    assert {t["Name"] for t in api.json("/api/Spaces-1/tenants/all")} == everyone


def test_an_unknown_tag_on_a_tenant_is_refused_and_changes_nothing(api: Api) -> None:
    created = api.post("/api/Spaces-1/tenants", {"Name": "Northwind", "TenantTags": ["Hosting/Cloud"]})
    assert created.status_code == 400
    assert created.json()["ErrorMessage"] == "There was a problem with your request."
    assert any("'Hosting/Cloud' does not exist" in error for error in created.json()["Errors"])
    assert api.json("/api/Spaces-1/tenants", name="Northwind")["TotalResults"] == 0
    path = f"/api/Spaces-1/tenants/{seed.CONTOSO_ID}"
    changed = api.put(path, {"Description": "renamed", "TenantTags": ["Shared"]})  # not a canonical name
    assert changed.status_code == 400
    after = api.json(path)
    assert (after["Description"], after["TenantTags"]) == (None, [seed.DEDICATED_TAG])
    assert api.put(path, {"TenantTags": [seed.SHARED_TAG]}).json()["TenantTags"] == [seed.SHARED_TAG]


def test_an_unknown_tag_on_a_machine_is_refused_and_changes_nothing(api: Api) -> None:
    body = {
        "Name": "prod-app-pool-01",
        "EnvironmentIds": [seed.PRODUCTION_ID],
        "Roles": [seed.APP_ROLE],
        "TenantTags": ["Hosting/Pool"],
    }
    created = api.post("/api/Spaces-1/machines", body)
    assert created.status_code == 400
    assert any("'Hosting/Pool' does not exist" in error for error in created.json()["Errors"])
    assert api.json("/api/Spaces-1/machines", name="prod-app-pool-01")["TotalResults"] == 0
    machine = api.json("/api/Spaces-1/machines", name="prod-app-fabrikam-01")["Items"][0]
    path = f"/api/Spaces-1/machines/{machine['Id']}"
    refused = api.put(path, {"Roles": [seed.WEB_ROLE], "TenantTags": ["Hosting/Pool"]})
    assert refused.status_code == 400
    assert (api.json(path)["Roles"], api.json(path)["TenantTags"]) == ([seed.APP_ROLE], [])


def _pool_machine(api: Api, name: str, tags: list[str], participation: str = "Tenanted", **extra: Any) -> str:
    body = {
        "Name": name,
        "EnvironmentIds": [seed.PRODUCTION_ID],
        "Roles": [seed.APP_ROLE],
        "TenantTags": tags,
        "TenantedDeploymentParticipation": participation,
        **extra,
    }
    response = api.post("/api/Spaces-1/machines", body)
    assert response.status_code == 201, response.text
    return str(response.json()["Id"])


def _reached(api: Api, release_id: str, tenant_id: str | None) -> set[str]:
    path = f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.PRODUCTION_ID}"
    preview = api.json(f"{path}/{tenant_id}" if tenant_id else path)
    step = next(s for s in preview["StepsToExecute"] if s["ActionName"] == SCHEDULING)
    return {m["Name"] for m in step["Machines"]}


def _release(api: Api) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{seed.SCHEDULING_SERVICE_ID}/releases/2021.1.0.1")["Id"])


def test_a_machine_with_tenant_tags_serves_the_tenants_they_match(api: Api) -> None:
    _pool_machine(api, "prod-app-shared-01", [seed.SHARED_TAG])
    _pool_machine(api, "prod-app-any-01", [seed.SHARED_TAG, seed.DEDICATED_TAG], "TenantedOrUntenanted")
    # Names Contoso by id and Fabrikam's tag: both.
    _pool_machine(api, "prod-app-both-01", [seed.SHARED_TAG], TenantIds=[seed.CONTOSO_ID])
    _pool_machine(api, "prod-app-none-01", [], TenantIds=[])
    release_id = _release(api)
    assert _reached(api, release_id, seed.FABRIKAM_ID) == {
        "prod-app-fabrikam-01",
        "prod-app-shared-01",
        "prod-app-any-01",
        "prod-app-both-01",
    }
    assert _reached(api, release_id, seed.CONTOSO_ID) == {"prod-app-contoso-01", "prod-app-any-01", "prod-app-both-01"}
    assert _reached(api, release_id, None) == {"prod-app-any-01"}


def test_machine_tags_from_two_tag_sets_need_a_match_in_both(api: Api) -> None:
    _tag_set(api, "Ring", "Early", "Stable")
    api.put(f"/api/Spaces-1/tenants/{seed.CONTOSO_ID}", {"TenantTags": [seed.DEDICATED_TAG, "Ring/Early"]})
    api.put(f"/api/Spaces-1/tenants/{seed.FABRIKAM_ID}", {"TenantTags": [seed.SHARED_TAG, "Ring/Stable"]})
    _pool_machine(api, "prod-app-early-01", [seed.SHARED_TAG, seed.DEDICATED_TAG, "Ring/Early"])
    _pool_machine(api, "prod-app-shared-stable-01", [seed.SHARED_TAG, "Ring/Stable"])
    _pool_machine(api, "prod-app-shared-early-01", [seed.SHARED_TAG, "Ring/Early"])
    release_id = _release(api)
    assert _reached(api, release_id, seed.CONTOSO_ID) == {"prod-app-contoso-01", "prod-app-early-01"}
    assert _reached(api, release_id, seed.FABRIKAM_ID) == {"prod-app-fabrikam-01", "prod-app-shared-stable-01"}


def test_previews_and_deployments_reach_the_same_tagged_machines(api: Api) -> None:
    shared = _pool_machine(api, "prod-app-shared-01", [seed.SHARED_TAG], SkipInitialHealthCheck=True)
    release_id = _release(api)
    reached = {}
    for tenant_id in (seed.FABRIKAM_ID, seed.CONTOSO_ID):
        deployment = api.deploy(ReleaseId=release_id, EnvironmentId=seed.PRODUCTION_ID, TenantId=tenant_id)
        api.wait_task(deployment["TaskId"], lambda t: t["HasPendingInterruptions"], timeout=30)
        api.approve_all(deployment["Id"], api_key=seed.QA_API_KEY)
        task = api.wait_task(deployment["TaskId"], lambda t: t["IsCompleted"], timeout=30)
        assert task["State"] == "Success"
        done = api.json(f"/api/Spaces-1/deployments/{deployment['Id']}")
        names = {api.json(f"/api/Spaces-1/machines/{m}")["Name"] for m in done["DeployedToMachineIds"]}
        assert names == _reached(api, release_id, tenant_id)
        reached[tenant_id] = shared in done["DeployedToMachineIds"]
    assert reached == {seed.FABRIKAM_ID: True, seed.CONTOSO_ID: False}
