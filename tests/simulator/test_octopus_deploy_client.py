"""A second independent client, the npm package `octopus-deploy` 6.3.1: `release promote` reads the
project's variable set to fill FormValues, then creates the deployment."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from simulator import seed
from tests.simulator.conftest import Api

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "octopus_deploy_promote.js"


def _promote(api: Api, *extra: str) -> tuple[int, dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "octopus-deploy").is_dir():
        pytest.fail("run `npm ci --prefix tests/js` first (and install Node.js 18 or newer)")
    variables = json.dumps({seed.CHANGE_REQUEST_VARIABLE_NAME: "CHG-2021-3"})
    args = [api.base_url, seed.CONDUCTOR_API_KEY, "web-api", seed.WEB_API_2021_3_VERSION, "Staging", variables]
    result = subprocess.run(
        [node, str(SCRIPT), *args, *extra], capture_output=True, text=True, timeout=120, check=False
    )
    try:
        summary: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(result.stdout + result.stderr)
    return result.returncode, summary


@pytest.mark.parametrize("space", [(), ("Default",)], ids=["default space", "named space"])
def test_release_promote_fills_form_values_from_the_variable_set(api: Api, space: tuple[str, ...]) -> None:
    code, summary = _promote(api, *space)
    assert code == 0, summary["output"]
    assert "Failed" not in summary["output"]
    assert summary["deployment"] == {
        "ReleaseId": seed.WEB_API_2021_3_RELEASE_ID,
        "EnvironmentId": seed.STAGING_ID,
        "FormValues": {seed.WEB_API_CHANGE_REQUEST_VARIABLE_ID: "CHG-2021-3"},
        "Comments": "Promoted by octopus-deploy",
    }
    task = api.wait_task(api.json(f"/api/deployments/{summary['deploymentId']}")["TaskId"], lambda t: t["IsCompleted"])
    assert task["State"] == "Success"


def test_release_promote_stops_when_the_environment_has_no_such_prompt(api: Api) -> None:
    """Test is outside the variable's scope: the client finds no variable to fill and deploys nothing."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "octopus-deploy").is_dir():
        pytest.fail("run `npm ci --prefix tests/js` first (and install Node.js 18 or newer)")
    before = api.json("/api/Spaces-1/deployments", take=1)["Items"][0]["Id"]
    variables = json.dumps({seed.CHANGE_REQUEST_VARIABLE_NAME: "CHG-1"})
    args = [api.base_url, seed.CONDUCTOR_API_KEY, "web-api", seed.WEB_API_2021_3_VERSION, "Test", variables]
    result = subprocess.run([node, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "No variable 'ChangeRequest' with scope 'Test'" in json.loads(result.stdout)["output"]
    assert api.json("/api/Spaces-1/deployments", take=1)["Items"][0]["Id"] == before
