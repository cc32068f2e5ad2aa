"""Project variable sets and prompted variables: the set, the form, required values, FormValues kept."""

from __future__ import annotations

from typing import Any

from simulator import seed
from tests.simulator.conftest import Api

WEB_API_SET = f"variableset-{seed.WEB_API_ID}"


def _web_api_2021_3(api: Api) -> str:
    return str(api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}/releases/{seed.WEB_API_2021_3_VERSION}")["Id"])


def _require_approver(api: Api) -> dict[str, Any]:
    """Add a required prompted variable (Staging only) to Web API's variable set."""
    variable_set = api.json(f"/api/Spaces-1/variables/{WEB_API_SET}")
    variable_set["Variables"].append(
        {
            "Name": "Approver",
            "Value": None,
            "Scope": {"Environment": [seed.STAGING_ID]},
            "Prompt": {"Label": "Approver", "Description": "Who approved it", "Required": True},
        }
    )
    response = api.put(f"/api/Spaces-1/variables/{WEB_API_SET}", variable_set)
    assert response.status_code == 200, response.text
    saved: dict[str, Any] = response.json()
    return next(v for v in saved["Variables"] if v["Name"] == "Approver")


def test_the_project_variable_set_is_served_spaced_and_unspaced(api: Api) -> None:
    project = api.json(f"/api/Spaces-1/projects/{seed.WEB_API_ID}")
    assert project["VariableSetId"] == WEB_API_SET
    spaced = api.json(f"/api/Spaces-1/variables/{WEB_API_SET}")
    assert api.json(f"/api/variables/{WEB_API_SET}") == spaced
    assert (spaced["Id"], spaced["OwnerId"], spaced["SpaceId"]) == (WEB_API_SET, seed.WEB_API_ID, seed.SPACE_ID)
    environments = [e["Name"] for e in spaced["ScopeValues"]["Environments"]]
    assert environments == ["Development", "Test", "Staging", "Production"]
    [variable] = spaced["Variables"]
    assert variable["Id"] == seed.WEB_API_CHANGE_REQUEST_VARIABLE_ID
    assert variable["Name"] == seed.CHANGE_REQUEST_VARIABLE_NAME
    assert variable["Scope"] == {"Environment": [seed.STAGING_ID, seed.PRODUCTION_ID]}
    assert variable["Prompt"]["Label"] == "Change request"
    assert variable["Prompt"]["Required"] is False
    assert api.get("/api/Spaces-1/variables/variableset-Projects-99").status_code == 404


def test_put_checks_the_version_and_needs_an_administrator(api: Api) -> None:
    variable_set = api.json(f"/api/Spaces-1/variables/{WEB_API_SET}")
    assert api.as_user(seed.CONDUCTOR_API_KEY).put(f"/api/variables/{WEB_API_SET}", variable_set).status_code == 403
    assert api.put(f"/api/variables/{WEB_API_SET}", variable_set).status_code == 200
    stale = api.put(f"/api/variables/{WEB_API_SET}", variable_set)
    assert stale.status_code == 400
    assert "modified by someone else" in stale.json()["Errors"][0]


def test_sensitive_values_are_never_returned_and_kept_when_sent_as_null(api: Api) -> None:
    variable_set = api.json(f"/api/variables/{WEB_API_SET}")
    variable_set["Variables"].append({"Id": "secret-1", "Name": "Token", "Value": "s3cret", "IsSensitive": True})
    saved = api.put(f"/api/variables/{WEB_API_SET}", variable_set).json()
    token = next(v for v in saved["Variables"] if v["Name"] == "Token")
    assert (token["Value"], token["Type"]) == (None, "Sensitive")
    assert "s3cret" not in api.get(f"/api/variables/{WEB_API_SET}").text


def test_prompted_variables_in_scope_are_form_elements_of_the_preview_and_all_of_them_of_the_template(api: Api) -> None:
    approver = _require_approver(api)
    release_id = _web_api_2021_3(api)
    staging = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.STAGING_ID}")["Form"]
    assert [e["Name"] for e in staging["Elements"]] == [seed.WEB_API_CHANGE_REQUEST_VARIABLE_ID, approver["Id"]]
    element = staging["Elements"][1]
    assert element["Control"] == {
        "Type": "VariableValue",
        "Name": "Approver",
        "Label": "Approver",
        "Description": "Who approved it",
        "Required": True,
        "DisplaySettings": {},
    }
    assert element["IsValueRequired"] is True
    production = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.PRODUCTION_ID}")["Form"]
    assert [e["Name"] for e in production["Elements"]] == [seed.WEB_API_CHANGE_REQUEST_VARIABLE_ID]
    test = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/preview/{seed.TEST_ID}")["Form"]
    assert test == {"Values": {}, "Elements": []}
    template = api.json(f"/api/Spaces-1/releases/{release_id}/deployments/template")["Form"]
    assert [e["Name"] for e in template["Elements"]] == [seed.WEB_API_CHANGE_REQUEST_VARIABLE_ID, approver["Id"]]


def test_a_deployment_missing_a_required_value_is_400_naming_it(api: Api) -> None:
    approver = _require_approver(api)
    release_id = _web_api_2021_3(api)
    refused = api.post("/api/Spaces-1/deployments", {"ReleaseId": release_id, "EnvironmentId": seed.STAGING_ID})
    assert refused.status_code == 400
    [error] = refused.json()["Errors"]
    assert "'Approver'" in error
    assert approver["Id"] in error
    blank = {"ReleaseId": release_id, "EnvironmentId": seed.STAGING_ID, "FormValues": {approver["Id"]: " "}}
    assert api.post("/api/Spaces-1/deployments", blank).status_code == 400
    # Another environment does not ask for it.
    assert api.deploy(ReleaseId=release_id, EnvironmentId=seed.DEVELOPMENT_ID)["FormValues"] == {}


def test_form_values_are_kept_on_the_deployment_and_camel_case_bodies_are_read(api: Api) -> None:
    approver = _require_approver(api)
    values = {approver["Id"]: "qa.tester", seed.WEB_API_CHANGE_REQUEST_VARIABLE_ID: "CHG-7"}
    body = {"releaseId": _web_api_2021_3(api), "environmentId": seed.STAGING_ID, "formValues": values}
    response = api.post("/api/deployments", body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["EnvironmentId"], created["FormValues"]) == (seed.STAGING_ID, values)
    assert api.json(f"/api/Spaces-1/deployments/{created['Id']}")["FormValues"] == values


def test_the_orchestration_project_prompts_for_the_same_name(api: Api) -> None:
    release = api.json(f"/api/Spaces-1/releases/{seed.ORCHESTRATION_2021_3_RELEASE_ID}")
    form = api.json(f"/api/Spaces-1/releases/{release['Id']}/deployments/preview/{seed.STAGING_ID}")["Form"]
    [element] = form["Elements"]
    assert element["Name"] == seed.ORCHESTRATION_CHANGE_REQUEST_VARIABLE_ID
    assert element["Control"]["Name"] == seed.CHANGE_REQUEST_VARIABLE_NAME
