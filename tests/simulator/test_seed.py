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
