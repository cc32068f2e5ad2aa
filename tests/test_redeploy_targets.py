"""Which plans a machine joins and what it gets: tenants by tag, one deployment at a time per machine across
environments, and the release the environment runs (partial deployments, channels, long histories).
In-process plans, the simulator over HTTP, real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from simulator.seed import (
    APP_ROLE,
    CONTOSO_ID,
    DEDICATED_TAG,
    FABRIKAM_ID,
    PRODUCTION_ID,
    SCHEDULING_SERVICE_ID,
    SHARED_TAG,
    SPACE_ID,
    STAGING_ID,
    WEB_API_ID,
    WEB_ROLE,
)
from tests.support.plan_harness import Harness, plan_harness, rules_with
from tests.support.stack import people_approving
from workers.keys import RedisKeys

pytestmark = pytest.mark.slow


def release_id(harness: Harness, project_id: str, version: str) -> str:
    with harness.admin() as admin:
        return str(admin.get(f"/api/{SPACE_ID}/projects/{project_id}/releases/{version}").json()["Id"])


def version_of(harness: Harness, deployment: dict[str, Any]) -> str:
    with harness.admin() as admin:
        return str(admin.get(f"/api/{SPACE_ID}/releases/{deployment['ReleaseId']}").json()["Version"])


def deploy_by_hand(harness: Harness, project_id: str, version: str, machine_ids: list[str]) -> dict[str, Any]:
    """A person's partial deployment to some Staging machines, waited for until it succeeded."""
    body = {
        "ReleaseId": release_id(harness, project_id, version),
        "EnvironmentId": STAGING_ID,
        "SpecificMachineIds": machine_ids,
    }
    with harness.admin() as admin:
        response = admin.post(f"/api/{SPACE_ID}/deployments", json=body)
    assert response.status_code == 201, response.text
    deployment: dict[str, Any] = response.json()
    harness.run_until("the deployment by hand", lambda: harness.task(deployment["TaskId"])["State"] == "Success")
    return deployment


def machine_named(harness: Harness, name: str) -> str:
    with harness.admin() as admin:
        (machine,) = admin.get(f"/api/{SPACE_ID}/machines", params={"name": name}).json()["Items"]
    return str(machine["Id"])


def test_a_machine_tenanted_by_tags_alone_gets_a_plan_per_matching_tenant(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys) as harness:
        before = harness.last_deployment_number()
        machine = harness.add_machine(
            "prod-app-tagged-01",
            [PRODUCTION_ID],
            [APP_ROLE],
            TenantedDeploymentParticipation="Tenanted",
            TenantTags=[SHARED_TAG, DEDICATED_TAG],  # one tag set: either tag matches
        )
        gathered = harness.machine_added(machine)
        with people_approving(harness.sim_url):
            plans = harness.finished(2, timeout=90)
        deployments = harness.deployments_since(before)

    assert len(gathered["gathered"]) == 2
    assert {plan.tenant_id for plan in plans} == {CONTOSO_ID, FABRIKAM_ID}
    assert all(plan.status == "succeeded" for plan in plans)
    by_tenant = {d["TenantId"]: d for d in deployments}
    assert set(by_tenant) == {CONTOSO_ID, FABRIKAM_ID}
    assert all(d["ProjectId"] == SCHEDULING_SERVICE_ID for d in deployments)
    assert all(d["SpecificMachineIds"] == [machine["Id"]] for d in deployments)


def test_a_machine_in_two_environments_never_runs_two_conductor_deployments_at_once(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, step_duration=0.5) as harness:
        before = harness.last_deployment_number()
        machine = harness.add_machine("web-both-01", [STAGING_ID, PRODUCTION_ID], [WEB_ROLE])
        harness.machine_added(machine)
        with people_approving(harness.sim_url):
            plans = harness.finished(2, timeout=120)
        deployments = harness.deployments_since(before)
        tasks = [harness.task(d["TaskId"]) for d in deployments]

    assert {plan.environment_id for plan in plans} == {STAGING_ID, PRODUCTION_ID}
    assert all(plan.status == "succeeded" for plan in plans)
    assert len(deployments) == 4
    assert all(d["SpecificMachineIds"] == [machine["Id"]] for d in deployments)
    for first in tasks:
        for second in tasks:
            if first is not second:
                assert first["CompletedTime"] <= second["QueueTime"] or second["CompletedTime"] <= first["QueueTime"]
    waited = [step.reason for past in harness.seen for step in past.steps if step.reason]
    assert any(reason.startswith(f"waiting: {machine['Id']} being deployed by plan-") for reason in waited)


def test_a_partial_deployment_of_an_older_release_does_not_choose_the_release(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys) as harness:
        # Staging runs Web API 2021.2.0.1; someone redeploys 2021.1.0.1 to one machine only.
        deploy_by_hand(harness, WEB_API_ID, "2021.1.0.1", [machine_named(harness, "stg-web-01")])
        before = harness.last_deployment_number()
        machine = harness.add_machine("stg-web-partial", [STAGING_ID], [WEB_ROLE])
        harness.machine_added(machine)
        (plan,) = harness.finished()
        web_api = next(d for d in harness.deployments_since(before) if d["ProjectId"] == WEB_API_ID)
        version = version_of(harness, web_api)

    assert version == "2021.2.0.1"
    assert plan.status == "succeeded"


class Recording(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


def test_the_channel_is_filtered_by_octopus_in_the_request(connection: redis.Redis, keys: RedisKeys) -> None:
    transport = Recording()
    rules = rules_with(channels={"Web API": "Default"})
    with plan_harness(connection, keys, rules=rules, transport=transport) as harness:
        with harness.admin() as admin:
            (channel,) = admin.get(f"/api/{SPACE_ID}/projects/{WEB_API_ID}/channels").json()["Items"]
        harness.machine_added(harness.add_machine("stg-web-channel", [STAGING_ID], [WEB_ROLE]))
        (plan,) = harness.finished()

    lists = [r for r in transport.requests if r.method == "GET" and r.url.path == f"/api/{SPACE_ID}/deployments"]
    web_api_lists = [r for r in lists if r.url.params.get("projects") == WEB_API_ID]
    assert web_api_lists
    assert all(r.url.params.get("channels") == channel["Id"] for r in web_api_lists)
    assert plan.status == "succeeded"


def test_a_machine_that_has_the_release_far_back_in_the_history_is_not_deployed_again(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, queue_delay=0, step_duration=0) as harness:
        machine = harness.add_machine("stg-web-history", [STAGING_ID], [WEB_ROLE])
        deploy_by_hand(harness, WEB_API_ID, "2021.2.0.1", [machine["Id"]])
        # More than a page of newer deployments of the same release, to another machine.
        other = machine_named(harness, "stg-web-01")
        for _ in range(105):
            deploy_by_hand(harness, WEB_API_ID, "2021.2.0.1", [other])
        before = harness.last_deployment_number()
        harness.machine_added(machine)
        (plan,) = harness.finished()
        deployments = harness.deployments_since(before)

    step = next(step for step in plan.steps if step.project == "Web API")
    assert step.status == "skipped"
    assert step.reason == f"{machine['Id']} already received Web API 2021.2.0.1"
    assert WEB_API_ID not in [d["ProjectId"] for d in deployments]
