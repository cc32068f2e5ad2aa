"""Stuck deployments against the simulator over HTTP and real Redis: the task watcher lists what Octopus runs,
whoever made it, and a deployment past `stuck_after_seconds` of running time is canceled with its note, while
one waiting on a person for longer is left alone; a plan step's stuck deployment ends through its plan. Then
the conservative running time of a task first seen mid-run, and what holds a step of an exclusion group."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from simulator.seed import (
    DATABASE_ID,
    PRODUCTION_ID,
    QA_API_KEY,
    SPACE_ID,
    STAGING_ID,
    TEST_ID,
    WEB_ROLE,
    WEB_UI_ID,
)
from tests.support.plan_harness import Harness, plan_harness, rules_with
from tests.support.stack import octopus
from workers.exclusion import blocks
from workers.keys import RedisKeys
from workers.octopus import OctopusClient, RetryPolicy
from workers.rules import RulesError, parse_rules
from workers.runner import worker_context
from workers.running_deployments import PLACE_SECONDS, DeploymentPlaces, RunningDeployment
from workers.running_watch import RunningWatch, pace
from workers.stuck_deployments import LONGEST_GAP_SECONDS, StuckLimit, StuckStore, cancel_stuck, tally_running
from workers.task_watcher import TaskWatcher

T = TypeVar("T")
LIMIT = 1
RULES = rules_with() + f"    stuck_after_seconds: {LIMIT}\n    cancel_stuck: true\n"


def person_deploys(harness: Harness, project_id: str, version: str, environment_id: str) -> dict[str, Any]:
    """A deployment a person makes through Octopus's API: the conductor has no record of it."""
    with octopus(harness.sim_url, QA_API_KEY) as person:
        release = person.get(f"/api/{SPACE_ID}/projects/{project_id}/releases/{version}").json()
        response = person.post(
            f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release["Id"], "EnvironmentId": environment_id}
        )
    assert response.status_code == 201, response.text
    deployment: dict[str, Any] = response.json()
    return deployment


def watch_until(harness: Harness, watcher: TaskWatcher, what: str, probe: Callable[[], T | None]) -> T:
    queue = Queue(harness.keys.queue_name, connection=harness.connection, serializer=JSONSerializer)
    worker = SimpleWorker([queue], connection=harness.connection, serializer=JSONSerializer)
    deadline = time.monotonic() + 30
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        watcher.step()
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        time.sleep(0.1)


def test_a_persons_deployment_past_its_limit_is_canceled_with_a_note_and_one_waiting_on_people_is_not(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, rules=RULES, step_duration=30) as harness:
        stuck = person_deploys(harness, DATABASE_ID, "2021.3.0.1", TEST_ID)
        waiting = person_deploys(harness, WEB_UI_ID, "2021.1.0.2", PRODUCTION_ID)  # QA approval first
        watcher = TaskWatcher(harness.context, name="worker-a")
        store = StuckStore.of(harness.context)

        def canceled() -> Any:
            record = store.load(stuck["TaskId"])
            return record if record is not None and record.action == "canceled" else None

        record = watch_until(harness, watcher, "the stuck deployment to be canceled", canceled)
        looks = watcher.running.looks
        place_reads = harness.client.calls["GET /api/{space}/deployments"]
        # A few more looks: the one waiting on people has now waited longer than the limit, seen at each look.
        watch_until(harness, watcher, "more looks", lambda: watcher.running.looks >= looks + 2)

        assert harness.task(stuck["TaskId"])["State"] == "Canceled"
        assert record.deployment_id == stuck["Id"]
        assert (record.project, record.environment, record.orchestration) == ("Database", "Test", "sample-app")
        assert record.running_seconds > LIMIT
        assert record.note.startswith(f"Release Conductor canceled {stuck['Id']} (Database to Test): it ran ")
        assert f"past stuck_after_seconds {LIMIT} of orchestration sample-app" in record.note
        assert record.plan_id is None

        task = harness.task(waiting["TaskId"])
        assert (task["State"], task["HasPendingInterruptions"]) == ("Executing", True)
        assert store.load(waiting["TaskId"]) is None
        assert store.tallies([waiting["TaskId"]])[waiting["TaskId"]].seconds == 0
        # One call per look lists everything running; a deployment's place is read once, not at every look.
        assert harness.client.calls["GET /api/tasks"] == watcher.running.looks
        assert harness.client.calls["GET /api/{space}/deployments"] == place_reads <= 2
        assert store.counts() == {"cancelling": 1, "canceled": 1}

        # Had the waiting one been found past its limit while running, its cancel would now leave it to people.
        assert store.report(record.model_copy(update={"task_id": waiting["TaskId"], "action": "cancelling"}))
        assert cancel_stuck(waiting["TaskId"], harness.context)["action"] == "left_to_people"
        assert harness.task(waiting["TaskId"])["State"] == "Executing"


def test_a_plan_steps_stuck_deployment_ends_through_its_plan_with_the_note(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, rules=RULES, step_duration=30) as harness:
        watcher = TaskWatcher(harness.context, name="worker-a")
        machine = harness.add_machine("stg-web-stuck", [STAGING_ID], [WEB_ROLE])
        harness.machine_added(machine)

        def finished() -> Any:
            plans = harness.plans.recent()
            return plans[0] if plans and plans[0].status != "running" else None

        plan = watch_until(harness, watcher, "the plan to end", finished)

        web_api = next(step for step in plan.steps if step.project == "Web API")
        assert plan.status == "failed"
        assert web_api.status == "failed"
        assert web_api.task_id is not None
        assert harness.task(web_api.task_id)["State"] == "Canceled"
        reason = web_api.reason or ""
        assert (
            f"{web_api.deployment_id} ended Failed after the conductor canceled it: Release Conductor canceled"
            in reason
        )
        assert f"past stuck_after_seconds {LIMIT} of orchestration sample-app" in reason
        record = StuckStore.of(harness.context).load(web_api.task_id)
        assert record is not None
        assert (record.action, record.plan_id) == ("canceled", plan.id)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ("    cancel_stuck: true\n", "cancel_stuck is true but stuck_after_seconds is not set"),
        ("    stuck_after_seconds: 0\n", "stuck_after_seconds: Input should be greater than or equal to 1"),
    ],
)
def test_rules_refuse_a_cancel_without_a_limit(settings: str, problem: str) -> None:
    with pytest.raises(RulesError) as refused:
        parse_rules(rules_with() + settings)

    assert problem in "\n".join(refused.value.problems)


def test_the_pace_follows_the_smallest_limit_within_bounds() -> None:
    assert pace({}, waiting=False) == 5.0
    assert pace({"Projects-1": StuckLimit("a", 4, False), "Projects-2": StuckLimit("b", 600, True)}, waiting=False) == 2
    assert pace({"Projects-1": StuckLimit("a", 1, False)}, waiting=False) == 1.0
    assert pace({"Projects-1": StuckLimit("a", 600, False)}, waiting=True) == 1.0


def running_deployment(task_id: str, *, state: str = "Executing", pending: bool = False, **place: str) -> Any:
    task = {"Id": task_id, "State": state, "HasPendingInterruptions": pending, "StartTime": "2026-12-01T09:00:00Z"}
    where = {"project_id": "Projects-1", "environment_id": "Environments-2", "deployment_id": f"D-{task_id}", **place}
    return RunningDeployment(task_id=task_id, space_id=SPACE_ID, tenant_id=None, task=task, **where)


def test_running_time_counts_from_the_first_look_never_across_a_long_gap_nor_while_waiting_on_people(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    store = StuckStore(connection, keys.prefix)
    first = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # it started an hour before: that hour is not counted
    seconds = []
    for after, pending in [(0, False), (5, False), (5 + LONGEST_GAP_SECONDS + 1, False), (45, True), (50, False)]:
        tallies = tally_running(
            store, [running_deployment("T-1", pending=pending)], at=first + timedelta(seconds=after)
        )
        seconds.append(tallies["T-1"].seconds)

    # 0-5 s counts; the gap past LONGEST_GAP_SECONDS does not; a look waiting on people stops the count there.
    assert seconds == [0, 5, 5, 5, 5]


def test_only_another_projects_deployment_acting_in_that_environment_holds_a_waiting_step() -> None:
    entry: dict[str, object] = {
        "projects": ["Projects-1"],
        "environment": "Environments-2",
        "parent": "D-parent",
    }

    assert blocks(running_deployment("a"), entry)
    assert blocks(running_deployment("b", state="Cancelling"), entry)  # still acting on its targets
    assert not blocks(running_deployment("c", pending=True), entry)  # waiting on people
    assert not blocks(running_deployment("d", environment_id="Environments-3"), entry)
    assert not blocks(running_deployment("e", project_id="Projects-2"), entry)
    assert not blocks(running_deployment("parent", deployment_id="D-parent"), entry)  # the plan's own parent


def test_each_deployments_place_is_read_once_in_calls_of_200_ids(connection: redis.Redis, keys: RedisKeys) -> None:
    asked: list[list[str]] = []

    def octopus_answers(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["ids"].split(",")
        asked.append(ids)
        items = [
            {"Id": item, "ProjectId": "Projects-1", "EnvironmentId": "Environments-2", "TenantId": None} for item in ids
        ]
        return httpx.Response(200, json={"Items": items})

    with OctopusClient(
        base_url="http://octopus.test", api_key="API-TEST", transport=httpx.MockTransport(octopus_answers)
    ) as client:
        places = DeploymentPlaces(worker_context(connection=connection, keys=keys, octopus=client))
        deployments = [f"Deployments-{number}" for number in range(250)]
        first = places.of(SPACE_ID, deployments)
        again = places.of(SPACE_ID, deployments)

    assert [len(ids) for ids in asked] == [200, 50]  # then none: Redis holds them
    assert 0 < connection.ttl(f"{keys.prefix}:deployment-place:Deployments-7") <= PLACE_SECONDS
    assert first == again
    assert first["Deployments-7"] == ("Projects-1", "Environments-2", None)


def test_an_octopus_down_is_asked_again_after_a_pause_not_at_every_tick(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    asked: list[str] = []

    def octopus_down(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(503, json={"ErrorMessage": "down"})

    transport = httpx.MockTransport(octopus_down)
    retry = RetryPolicy(attempts=1)
    with OctopusClient(base_url="http://octopus.test", api_key="API-TEST", transport=transport, retry=retry) as client:
        context = worker_context(connection=connection, keys=keys, rules=parse_rules(RULES), octopus=client)
        watch = RunningWatch(context)
        for _ in range(5):  # the watcher ticks every half second
            watch.look_if_due()

    assert asked == ["/api/spaces/all"]
    assert watch.looks == 0
