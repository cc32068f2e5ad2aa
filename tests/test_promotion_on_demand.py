"""Promotions on demand, end to end: `conductor promote` and `POST /promotions` plan every component of the
orchestration for an environment, show the plan first, and the workers deploy it in order; with what-if
Octopus is not touched; nothing is approved on anyone's behalf."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulator.seed import PRODUCTION_ID, STAGING_ID
from tests.support.stack import CONDUCTOR, Stack, running_stack, wait_for
from tests.support.tokens import WRITE_AUTH
from workers.keys import RedisKeys
from workers.plans import Plan

pytestmark = pytest.mark.slow

FAST_LOOKS = {"look_again_seconds": 0.5, "look_again_max_seconds": 1, "keep_looking_seconds": 60}
RULES = {"release_pattern": "2021.3.0.*", "promotion": {"task_check_seconds": 1}}
IN_ORDER = ["Database", "Web API", "Web UI"]


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, orchestration=RULES) as running:
        yield running


def promote(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONDUCTOR, "promote", "sample-app", *args], env=stack.worker_env, capture_output=True, text=True, timeout=60
    )


def finished(stack: Stack, plan_id: str) -> Plan:
    def probe() -> Plan | None:
        plan = stack.plans.load(plan_id)
        return plan if plan is not None and plan.status not in ("planned", "running") else None

    return wait_for(f"{plan_id} to end", probe, timeout=120)


def plan_id_of(output: str) -> str:
    return next(line.split(":")[0] for line in output.splitlines() if line.startswith("promotion-"))


def test_what_if_shows_the_plan_and_changes_nothing_in_octopus(stack: Stack) -> None:
    before = stack.last_deployment_number()

    result = promote(stack, "--to", "Staging", "--what-if")

    assert result.returncode == 0, result.stderr
    assert "## sample-app to Staging, on demand" in result.stdout
    for component, release in (("Database", "2021.3.0.1"), ("Web API", "2021.3.0.2"), ("Web UI", "2021.3.0.1")):
        assert f"| {component} | {release} |" in result.stdout
    assert "what-if, nothing deployed" in result.stdout
    plan = stack.plans.load(plan_id_of(result.stdout))
    assert plan is not None
    assert plan.status == "succeeded"
    assert stack.last_deployment_number() == before


def test_conductor_promote_deploys_the_components_in_order(stack: Stack) -> None:
    before = stack.last_deployment_number()

    result = promote(stack, "--to", "Staging")

    assert result.returncode == 0, result.stderr
    plan = finished(stack, plan_id_of(result.stdout))
    assert plan.status == "succeeded"
    assert [step.project for step in plan.steps if step.status == "succeeded"] == IN_ORDER
    created = [d for d in stack.deployments_since(before) if d["EnvironmentId"] == STAGING_ID]
    assert [d["Id"] for d in created] == [step.deployment_id for step in plan.steps if step.deployment_id]
    assert all("on demand (conductor promote, by " in d["Comments"] for d in created)


def test_a_promotion_on_demand_approves_nothing_on_anyones_behalf(stack: Stack) -> None:
    staged = finished(stack, plan_id_of(promote(stack, "--to", "Staging").stdout))
    assert staged.status == "succeeded"

    result = promote(stack, "--to", "Production")
    plan_id = plan_id_of(result.stdout)

    def database_step_left() -> str | None:
        plan = stack.plans.load(plan_id)
        deployment_id = plan.steps[0].deployment_id if plan is not None else None
        if deployment_id is None:
            return None
        with stack.admin as admin:
            found = admin.get("/api/Spaces-1/interruptions", params={"regarding": deployment_id}).json()["Items"]
        records = [stack.approvals.load(item["Id"]) for item in found]
        return next((r.reason for r in records if r is not None and r.status == "refused"), None)

    reason = wait_for("Database's QA approval left to people", database_step_left, timeout=60)
    assert reason == (
        "a promotion on demand, with no parent deployment: Release Conductor approves nothing on anyone's behalf"
    )
    plan = stack.plans.load(plan_id)
    assert plan is not None
    assert plan.environment_id == PRODUCTION_ID


def test_post_promotions_needs_the_write_token_and_a_good_body(stack: Stack) -> None:
    url = f"{stack.intake_url}/promotions"
    before = stack.last_deployment_number()

    anonymous = httpx.post(url, json={"orchestration": "sample-app", "to": "Staging", "what_if": True})
    unknown_field = httpx.post(
        url, json={"orchestration": "sample-app", "to": "Staging", "when": "now"}, headers=WRITE_AUTH
    )
    not_json = httpx.post(url, content=b"promote please", headers=WRITE_AUTH)
    unknown_name = httpx.post(url, json={"orchestration": "sample-app", "to": "Stagingg"}, headers=WRITE_AUTH)
    what_if = httpx.post(
        url, json={"orchestration": "sample-app", "to": "Staging", "what_if": True}, headers=WRITE_AUTH
    )

    assert anonymous.status_code == 401
    assert unknown_field.status_code == 422
    assert unknown_field.json()["fields"][0]["field"] == "when"
    assert not_json.status_code == 400
    assert unknown_name.status_code == 422
    assert "no environment named 'Stagingg'" in unknown_name.json()["message"]
    assert what_if.status_code == 201
    assert what_if.headers["Location"] == f"/promotions/{what_if.json()['id']}"
    assert what_if.json()["notes"].startswith("## sample-app to Staging, on demand")
    assert stack.last_deployment_number() == before
