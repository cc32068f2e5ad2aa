"""A promotion across spaces end to end: Payments Orchestration (Default space) drives Payments Service, which
lives in the Payments space (rules `space:` per component). The simulator delivers each space's events through
that space's own subscription; a worker process plans, deploys in the component's space, and relays into the
component's "Security approval" the parent's approval given by a person of the Security system team. A person
whose only team is of another space does not count. A deployment people made in the Payments space is bound by the
rules to the parent deployment of the Default space whose version covers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.seed import (
    ADMIN_API_KEY,
    CONDUCTOR_USER_ID,
    PAYMENTS_ORCHESTRATION_ID,
    PAYMENTS_SERVICE_ID,
    PAYMENTS_SERVICE_RELEASE_ID,
    PAYMENTS_SPACE_ID,
    PAYMENTS_STAGING_ID,
    PAYMENTS_VERSION,
    QA_API_KEY,
    SECURITY_API_KEY,
    SECURITY_USERNAME,
    SPACE_ID,
    STAGING_ID,
)
from tests.support.stack import Stack, octopus, running_stack, wait_for
from workers.approval_records import ApprovalRelay
from workers.keys import RedisKeys
from workers.plans import Plan

pytestmark = pytest.mark.slow

Doc = dict[str, Any]
RULES = """\
orchestrations:
  - name: payments
    space: Default
    parent_project: Payments Orchestration
    components:
      - project: Payments Service
        space: Payments
    redeploy:
      enabled: false
    approvals:
      look_again_seconds: 0.5
      look_again_max_seconds: 1
      keep_looking_seconds: 60
    promotion:
      task_check_seconds: 1
"""


# People deploy both projects themselves; the rules bind a Payments Service deployment to the parent deployment
# that succeeded in the environment of the same name, whose version gives a pattern its release matches.
BOUND = RULES.replace(
    "    promotion:\n      task_check_seconds: 1\n",
    "      bind_others: {release_pattern: '{parent:3}.*'}\n    promotion:\n      enabled: false\n",
)


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, rules_yaml=RULES, spaces=(SPACE_ID, PAYMENTS_SPACE_ID)) as running:
        yield running


def get(stack: Stack, path: str, **params: Any) -> Any:
    with stack.admin as admin:
        response = admin.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def deploy_parent(stack: Stack) -> Doc:
    """A release of Payments Orchestration (Default space) deployed to Staging."""
    with stack.admin as admin:
        release = admin.post(
            f"/api/{SPACE_ID}/releases", json={"ProjectId": PAYMENTS_ORCHESTRATION_ID, "Version": PAYMENTS_VERSION}
        )
        assert release.status_code == 201, release.text
        body = {"ReleaseId": release.json()["Id"], "EnvironmentId": STAGING_ID}
        response = admin.post(f"/api/{SPACE_ID}/deployments", json=body)
    assert response.status_code == 201, response.text
    deployment: Doc = response.json()
    return deployment


def raised(stack: Stack, space_id: str, deployment_id: str, title: str, *, pending_only: bool = False) -> Doc:
    """The interruption once Octopus raised it (it may be answered already: the relay is quick)."""

    def probe() -> Doc | None:
        params = {"regarding": deployment_id, "pendingOnly": "true" if pending_only else "false"}
        items = get(stack, f"/api/{space_id}/interruptions", **params)["Items"]
        return next((item for item in items if item["Title"] == title), None)

    found: Doc = wait_for(f"'{title}' raised in {deployment_id}", probe, timeout=60)
    return found


def approve(stack: Stack, api_key: str, space_id: str, interruption: Doc) -> None:
    base = f"/api/{space_id}/interruptions/{interruption['Id']}"
    with octopus(stack.sim_url, api_key) as person:
        assert person.put(f"{base}/responsible").status_code == 200
        assert person.post(f"{base}/submit", json={"Notes": "Reviewed.", "Result": "Proceed"}).status_code == 200


def deploying_plan(stack: Stack, parent: Doc) -> Plan:
    def probe() -> Plan | None:
        plan = stack.plans.load(f"promotion-{parent['Id']}")
        return plan if plan is not None and plan.steps[0].deployment_id else None

    plan: Plan = wait_for(f"the component of {parent['Id']} deploying", probe, timeout=60)
    return plan


def relay_of(stack: Stack, interruption_id: str, *statuses: str) -> ApprovalRelay:
    def probe() -> ApprovalRelay | None:
        record = stack.approvals.load(interruption_id)
        return record if record is not None and record.status in statuses else None

    try:
        found: ApprovalRelay = wait_for(f"the relay of {interruption_id} {statuses}", probe, timeout=60)
    except AssertionError:
        log = stack.log_path.read_text()[-6000:] if stack.log_path.exists() else ""
        raise AssertionError(f"{stack.approvals.load(interruption_id)}\nworker log:\n{log}") from None
    return found


def queued(stack: Stack, event_id: str) -> bool:
    recent = [json.loads(raw) for raw in stack.connection.lrange(stack.keys.recent_events, 0, -1)]
    return any(entry["id"] == event_id and entry["outcome"] == "queued" for entry in recent)


def test_a_component_of_another_space_is_deployed_there_with_the_system_teams_approval(stack: Stack) -> None:
    parent = deploy_parent(stack)
    approve(
        stack, SECURITY_API_KEY, SPACE_ID, raised(stack, SPACE_ID, parent["Id"], "Security approval", pending_only=True)
    )

    plan = deploying_plan(stack, parent)
    step = plan.steps[0]
    assert (step.space_id, step.environment_id, step.release_id) == (
        PAYMENTS_SPACE_ID,
        PAYMENTS_STAGING_ID,
        PAYMENTS_SERVICE_RELEASE_ID,
    )
    component = get(stack, f"/api/{PAYMENTS_SPACE_ID}/deployments/{step.deployment_id}")
    assert (component["SpaceId"], component["EnvironmentId"]) == (PAYMENTS_SPACE_ID, PAYMENTS_STAGING_ID)
    assert component["DeployedById"] == CONDUCTOR_USER_ID

    interruption = raised(stack, PAYMENTS_SPACE_ID, component["Id"], "Security approval")
    record = relay_of(stack, interruption["Id"], "relayed", "refused")
    assert record.status == "relayed", record.reason
    assert record.space_id == PAYMENTS_SPACE_ID
    assert record.covered_by is not None
    assert (record.covered_by.approver.username, record.covered_by.approver.team) == (SECURITY_USERNAME, "Security")
    assert record.covered_by.deployment_id == parent["Id"]
    assert f"/app#/{SPACE_ID}/tasks/{parent['TaskId']}" in record.covered_by.link

    # The Payments space's own event reached the intake, through that space's own subscription.
    (raised_event,) = get(
        stack,
        "/api/events",
        spaces=PAYMENTS_SPACE_ID,
        eventCategories="ManualInterventionInterruptionRaised",
        regarding=component["Id"],
    )["Items"]
    assert raised_event["SpaceId"] == PAYMENTS_SPACE_ID
    wait_for(f"{raised_event['Id']} queued by the intake", lambda: queued(stack, raised_event["Id"]), timeout=30)

    answered = get(stack, f"/api/{PAYMENTS_SPACE_ID}/interruptions/{interruption['Id']}")
    assert (answered["IsPending"], answered["ResponsibleUserId"]) == (False, CONDUCTOR_USER_ID)
    assert answered["Form"]["Values"]["Result"] == "Proceed"
    assert SECURITY_USERNAME in answered["Form"]["Values"]["Notes"]

    def parent_done() -> Doc | None:
        task: Doc = get(stack, f"/api/tasks/{parent['TaskId']}")
        return task if task["IsCompleted"] else None

    assert wait_for("the parent to finish", parent_done, timeout=60)["State"] == "Success"
    finished = stack.plans.load(plan.id)
    assert finished is not None
    assert finished.status == "succeeded"
    assert get(stack, f"/api/tasks/{component['TaskId']}")["State"] == "Success"


def test_a_person_only_in_a_team_of_another_space_does_not_count(stack: Stack) -> None:
    """QA is a team of the Default space: QA's answer in the parent counts for no step of the Payments space."""
    parent = deploy_parent(stack)
    approve(stack, QA_API_KEY, SPACE_ID, raised(stack, SPACE_ID, parent["Id"], "Security approval", pending_only=True))

    component_id = deploying_plan(stack, parent).steps[0].deployment_id
    assert component_id is not None
    interruption = raised(stack, PAYMENTS_SPACE_ID, component_id, "Security approval")
    record = relay_of(stack, interruption["Id"], "looking", "refused", "relayed")

    assert record.status == "looking"
    assert record.reason is not None
    assert "no approver" in record.reason, record.reason
    assert "approved by qa.tester (no team)" in record.reason, record.reason
    still = get(stack, f"/api/{PAYMENTS_SPACE_ID}/interruptions/{interruption['Id']}")
    assert (still["IsPending"], still["ResponsibleUserId"]) == (True, None)


def test_a_deployment_people_made_in_the_components_space_is_bound_to_the_parent_of_the_other_space(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    spaces = (SPACE_ID, PAYMENTS_SPACE_ID)
    with running_stack(redis_url, keys, tmp_path, rules_yaml=BOUND, spaces=spaces) as stack:
        parent = deploy_parent(stack)
        for title, key in (
            ("Plan the release", ADMIN_API_KEY),
            ("Security approval", SECURITY_API_KEY),
            ("Deploy the components", ADMIN_API_KEY),
        ):
            approve(stack, key, SPACE_ID, raised(stack, SPACE_ID, parent["Id"], title, pending_only=True))

        def parent_done() -> Doc | None:
            task: Doc = get(stack, f"/api/tasks/{parent['TaskId']}")
            return task if task["IsCompleted"] else None

        assert wait_for("the parent to finish", parent_done, timeout=60)["State"] == "Success"
        body = {"ReleaseId": PAYMENTS_SERVICE_RELEASE_ID, "EnvironmentId": PAYMENTS_STAGING_ID}
        with stack.admin as admin:
            created = admin.post(f"/api/{PAYMENTS_SPACE_ID}/deployments", json=body)
        assert created.status_code == 201, created.text
        component = created.json()
        interruption = raised(stack, PAYMENTS_SPACE_ID, component["Id"], "Security approval")
        record = relay_of(stack, interruption["Id"], "relayed", "refused")

    assert record.status == "relayed", record.reason
    assert record.covered_by is not None
    assert (record.covered_by.kind, record.covered_by.deployment_id) == ("bound_by_rule", parent["Id"])
    assert (record.covered_by.approver.username, record.covered_by.pattern) == (SECURITY_USERNAME, "2021.3.0.*")
    assert (record.covered_by.project, record.covered_by.environment) == ("Payments Orchestration", "Staging")
    assert component["ProjectId"] == PAYMENTS_SERVICE_ID
