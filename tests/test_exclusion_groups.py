"""Exclusion groups against the simulator over HTTP and real Redis: a plan step whose project shares a group with
a project a person is deploying to the same environment waits, says whom it waits on, and starts once the task
watcher sees that deployment end (here, the person cancels it); the plan's own timer would wait an hour."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import redis

from simulator.seed import DATABASE_ID, QA_API_KEY, TEST_ID, WEB_ROLE
from tests.support.plan_harness import Harness, plan_harness, rules_with
from tests.support.stack import octopus
from tests.test_stuck_deployments import person_deploys, watch_until
from workers.keys import RedisKeys
from workers.rules import RulesError, parse_rules
from workers.task_watcher import TaskWatcher

GROUP = "exclusion_groups:\n  - name: data-and-api\n    projects: [Database, Web API]\n"
RULES = rules_with().replace("task_check_seconds: 1\n", "task_check_seconds: 3600\n") + GROUP


def test_a_step_waits_while_another_project_of_its_group_deploys_there_then_proceeds(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, rules=RULES, step_duration=30) as harness:
        database = person_deploys(harness, DATABASE_ID, "2021.3.0.1", TEST_ID)
        watcher = TaskWatcher(harness.context, name="worker-a")
        watch_until(harness, watcher, "Database to run", lambda: executing(harness, database))
        machine = harness.add_machine("test-web-excluded", [TEST_ID], [WEB_ROLE])
        harness.machine_added(machine)

        def plan_now() -> Any:
            harness.seen += harness.plans.recent()
            return harness.plans.recent()[0]

        def web_api_held() -> bool:
            step = next(step for step in plan_now().steps if step.project == "Web API")
            return step.status == "pending" and "exclusion group" in (step.reason or "")

        watch_until(harness, watcher, "the Web API step to wait", web_api_held)
        harness.set_clock(StepDurationSeconds=0.1)  # the components' own deployments are quick
        with octopus(harness.sim_url, QA_API_KEY) as person:  # the person's deployment ends
            assert person.post(f"/api/tasks/{database['TaskId']}/cancel").status_code == 200

        plan = watch_until(harness, watcher, "the plan to end", lambda: (p := plan_now()).status != "running" and p)

        held = [
            step.reason
            for seen in harness.seen
            for step in seen.steps
            if step.project == "Web API" and step.status == "pending" and step.reason
        ]
        assert held, "the Web API step never said it waited"
        assert held[0] == (
            f"waiting: Database {database['Id']} ({database['TaskId']}) of exclusion group 'data-and-api' is "
            "deploying to Test; starts once it ends"
        )
        assert plan.status == "succeeded"
        web_api = next(step for step in plan.steps if step.project == "Web API")
        assert web_api.status == "succeeded"
        assert web_api.deployment_id is not None
        with harness.admin() as admin:
            created = admin.get(f"/api/Spaces-1/deployments/{web_api.deployment_id}").json()["Created"]
        finished_at = harness.task(database["TaskId"])["CompletedTime"]
        assert datetime.fromisoformat(created) >= datetime.fromisoformat(finished_at)  # by Octopus's own clock
        # Web UI shares no group with Database: it was never held.
        web_ui = next(step for step in plan.steps if step.project == "Web UI")
        assert web_ui.status == "succeeded"
        assert not any(
            "exclusion group" in (step.reason or "")
            for seen in harness.seen
            for step in seen.steps
            if step.project == "Web UI"
        )


def executing(harness: Harness, deployment: dict[str, Any]) -> bool:
    return bool(harness.task(deployment["TaskId"])["State"] == "Executing")


@pytest.mark.parametrize(
    ("groups", "problem"),
    [
        ("  - {name: web, projects: [Web API]}\n", "list at least two projects"),
        ("  - {name: web, projects: [Web API, web api]}\n", "project 'Web API' is listed twice"),
        ("  - {name: 'web:tier', projects: [Web API, Web UI]}\n", "String should match pattern"),
        ("  - {name: web, projects: [Web API, Web UI]}\n  - {name: Web, projects: [Database, Web UI]}\n", "unique"),
        ("  - {name: web, project: [Web API, Web UI]}\n", "did you mean 'projects'?"),
    ],
)
def test_rules_refuse_a_bad_exclusion_group(groups: str, problem: str) -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(rules_with() + "exclusion_groups:\n" + groups)

    assert problem in "\n".join(refused.value.problems)
    assert "exclusion_groups" in "\n".join(refused.value.problems)
