"""A new target in a component's own space: its redeploy plan is in that space and deploys that space's components
alone (machines are in one space), against the simulator over HTTP with real Redis."""

from __future__ import annotations

import pytest
import redis

from simulator.seed import PAYMENTS_ROLE, PAYMENTS_SERVICE_RELEASE_ID, PAYMENTS_SPACE_ID, PAYMENTS_TEST_ID
from tests.support.plan_harness import plan_harness
from workers.keys import RedisKeys

pytestmark = pytest.mark.slow

RULES = """\
orchestrations:
  - name: payments
    components:
      - project: Database
      - project: Payments Service
        space: Payments
    redeploy:
      group_window_seconds: 0
      task_check_seconds: 1
    approvals:
      enabled: false
"""


def test_a_new_target_of_the_components_space_gets_that_spaces_components_alone(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, rules=RULES) as harness:
        body = {
            "Name": "pay-test-02",
            "EnvironmentIds": [PAYMENTS_TEST_ID],
            "Roles": [PAYMENTS_ROLE],
            "Endpoint": {"CommunicationStyle": "None"},
            "SkipInitialHealthCheck": True,
        }
        with harness.admin() as admin:
            created = admin.post(f"/api/{PAYMENTS_SPACE_ID}/machines", json=body)
        assert created.status_code == 201, created.text
        machine = created.json()

        gathered = harness.machine_added(machine)
        (plan,) = harness.finished(1, timeout=60)
        with harness.admin() as admin:
            deployments = admin.get(f"/api/{PAYMENTS_SPACE_ID}/deployments", params={"take": 1}).json()["Items"]

    assert [item["group"].split("|")[1] for item in gathered["gathered"]] == [PAYMENTS_SPACE_ID]
    assert (plan.space_id, plan.environment_id, plan.status) == (PAYMENTS_SPACE_ID, PAYMENTS_TEST_ID, "succeeded")
    database, payments = plan.steps
    assert (database.status, database.reason) == (
        "skipped",
        f"Database lives in space Default, not in the new target's ({PAYMENTS_SPACE_ID})",
    )
    assert (payments.status, payments.release_id) == ("succeeded", PAYMENTS_SERVICE_RELEASE_ID)
    (deployment,) = deployments
    assert deployment["Id"] == payments.deployment_id
    assert (deployment["SpaceId"], deployment["SpecificMachineIds"]) == (PAYMENTS_SPACE_ID, [machine["Id"]])
