"""Octopus's official TypeScript client (@octopusdeploy/api-client) reads the simulator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from simulator import seed
from tests.simulator.conftest import Api

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "official_client.js"


def test_official_client_lists_projects_environments_releases_and_reads_a_task(api: Api) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the official client check needs Node.js 18 or newer")
    if not (JS_DIR / "node_modules" / "@octopusdeploy" / "api-client").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `npm ci --prefix tests/js` first")
    result = subprocess.run(
        [node, str(SCRIPT), api.base_url, seed.CONDUCTOR_API_KEY],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["problems"] == []
    assert [p["Name"] for p in summary["projects"]] == [
        "Database",
        "Web API",
        "Scheduling Service",
        "Web UI",
        "Release Orchestration",
        "Payments Orchestration",  # its component lives in the second space
    ]
    assert {p["SpaceId"] for p in summary["projects"]} == {seed.SPACE_ID}
    assert [e["Name"] for e in summary["environments"]] == ["Development", "Test", "Staging", "Production"]
    assert len(summary["releases"]) == 17
    assert summary["firstProjectReleases"] == ["2021.3.0.1", "2021.2.1.1", "2021.2.0.1", "2021.1.0.1"]
    newest = api.json("/api/Spaces-1/deployments", take=1)["Items"][0]
    assert summary["deployment"] == {"Id": newest["Id"], "TaskId": newest["TaskId"]}
    assert summary["task"]["State"] == "Success"
    assert summary["task"]["IsCompleted"] is True


def test_the_script_fails_on_a_bad_key(api: Api) -> None:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules").is_dir():
        pytest.fail("run `npm ci --prefix tests/js` first (and install Node.js 18 or newer)")
    result = subprocess.run(
        [node, str(SCRIPT), api.base_url, "API-WRONG"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0


def test_official_client_reads_tag_sets_creates_one_and_filters_tenants_by_tag(api: Api) -> None:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@octopusdeploy" / "api-client").is_dir():
        pytest.fail("run `npm ci --prefix tests/js` first (and install Node.js 18 or newer)")
    result = subprocess.run(
        [node, str(JS_DIR / "official_tag_sets.js"), api.base_url, seed.ADMIN_API_KEY],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["problems"] == []
    assert summary["tagSets"] == [{"Id": seed.HOSTING_TAG_SET_ID, "Name": seed.HOSTING_TAG_SET_NAME}]
    assert summary["tags"] == [seed.SHARED_TAG, seed.DEDICATED_TAG]
    assert summary["created"] == {"Id": "TagSets-2", "Tags": ["Region/Europe", "Region/America"]}
    assert summary["tenantsByTag"] == {seed.SHARED_TAG: ["Fabrikam"], seed.DEDICATED_TAG: ["Contoso"]}
    assert summary["tenantsWithAnyTag"] == ["Contoso", "Fabrikam"]
    assert [s["Name"] for s in api.json("/api/Spaces-1/tagsets/all")] == ["Hosting", "Region"]
