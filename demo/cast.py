"""Who is who in the seeded Octopus (the simulator's `sample` seed), by API key, user id and team."""

from __future__ import annotations

from dataclasses import dataclass

from simulator import seed


@dataclass(frozen=True)
class Cast:
    space_id: str
    admin_key: str
    build_server_key: str
    qa_key: str
    qa_username: str
    web_admin_key: str
    web_admin_username: str
    business_owner_key: str
    business_owner_username: str
    conductor_user_id: str
    development_id: str
    test_id: str
    staging_id: str
    production_id: str
    web_role: str
    web_api_id: str
    web_ui_id: str
    orchestration_project_id: str
    people_by_team: dict[str, tuple[str, str]]  # team id -> (API key, username) of a member


def sample_cast() -> Cast:
    return Cast(
        space_id=seed.SPACE_ID,
        admin_key=seed.ADMIN_API_KEY,
        build_server_key=seed.ADMIN_API_KEY,  # the seed has no CI account; the build server uses the admin's key
        qa_key=seed.QA_API_KEY,
        qa_username=seed.QA_USERNAME,
        web_admin_key=seed.WEB_ADMIN_API_KEY,
        web_admin_username=seed.WEB_ADMIN_USERNAME,
        business_owner_key=seed.BUSINESS_OWNER_API_KEY,
        business_owner_username=seed.BUSINESS_OWNER_USERNAME,
        conductor_user_id=seed.CONDUCTOR_USER_ID,
        development_id=seed.DEVELOPMENT_ID,
        test_id=seed.TEST_ID,
        staging_id=seed.STAGING_ID,
        production_id=seed.PRODUCTION_ID,
        web_role=seed.WEB_ROLE,
        web_api_id=seed.WEB_API_ID,
        web_ui_id=seed.WEB_UI_ID,
        orchestration_project_id=seed.ORCHESTRATION_ID,
        people_by_team={
            seed.QA_TEAM_ID: (seed.QA_API_KEY, seed.QA_USERNAME),
            seed.WEB_ADMINS_TEAM_ID: (seed.WEB_ADMIN_API_KEY, seed.WEB_ADMIN_USERNAME),
            seed.DBAS_TEAM_ID: (seed.DBA_API_KEY, seed.DBA_USERNAME),
        },
    )
