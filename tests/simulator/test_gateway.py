"""Authentication, the space segment, and Octopus's error bodies."""

from __future__ import annotations

import httpx

from simulator import seed
from tests.simulator.conftest import Api


def test_api_root_is_open_and_describes_the_server(api: Api) -> None:
    root = httpx.get(f"{api.base_url}/api").json()
    assert root["Application"] == "Octopus Deploy"
    assert root["ApiVersion"] == "3.0.0"
    assert root["Links"]["CurrentUser"] == "/api/users/me"


def test_missing_or_wrong_api_key_is_401_with_error_body(api: Api) -> None:
    missing = httpx.get(f"{api.base_url}/api/projects")
    wrong = httpx.get(f"{api.base_url}/api/projects", headers={"X-Octopus-ApiKey": "API-NOPE"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert set(response.json()) >= {"ErrorMessage", "Errors"}


def test_api_key_in_query_parameter(api: Api) -> None:
    response = httpx.get(f"{api.base_url}/api/users/me", params={"apikey": seed.QA_API_KEY})
    assert response.status_code == 200
    assert response.json()["Username"] == seed.QA_USERNAME


def test_extra_keys_from_the_command_line_are_administrators(make_api: object) -> None:
    api = make_api(api_keys=["API-EXTRAKEY1234567890"])  # type: ignore[operator]
    extra = api.as_user("API-EXTRAKEY1234567890")
    assert extra.get("/api/users/me").json()["Id"] == seed.ADMIN_USER_ID
    body = {"Name": "extra-01", "EnvironmentIds": [seed.TEST_ID], "Roles": ["web-server"]}
    assert extra.post("/api/Spaces-1/machines", body).status_code == 201


def test_space_scoped_and_default_space_routes_agree(api: Api) -> None:
    scoped = api.json("/api/Spaces-1/environments/all")
    default = api.json("/api/environments/all")
    assert [e["Id"] for e in scoped] == [e["Id"] for e in default]
    assert [e["Name"] for e in scoped] == ["Development", "Test", "Staging", "Production"]


def test_unknown_space_and_unknown_id_are_404(api: Api) -> None:
    assert api.get("/api/Spaces-99/projects").status_code == 404
    response = api.get("/api/Spaces-1/projects/Projects-999")
    assert response.status_code == 404
    assert response.json() == {"ErrorMessage": "The resource 'Projects-999' was not found.", "Errors": []}


def test_user_without_permission_gets_403(api: Api) -> None:
    viewer = api.as_user(seed.VIEWER_API_KEY)
    body = {"Name": "web-99", "EnvironmentIds": [seed.PRODUCTION_ID], "Roles": ["web-server"]}
    response = viewer.post("/api/Spaces-1/machines", body)
    assert response.status_code == 403
    assert "MachineCreate" in response.json()["ErrorMessage"]
    assert (
        viewer.post(
            "/api/Spaces-1/deployments", {"ReleaseId": "Releases-1", "EnvironmentId": seed.DEVELOPMENT_ID}
        ).status_code
        == 403
    )
    # ...but may read.
    assert viewer.get("/api/Spaces-1/machines").status_code == 200


def test_invalid_json_body_is_400(api: Api) -> None:
    response = api.client.post(
        "/api/Spaces-1/machines", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["Errors"] == ["The request body is not valid JSON."]
