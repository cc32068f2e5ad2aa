"""The task watcher against the simulator over HTTP and real Redis, with no webhook delivered: plans move on
because the watcher read their tasks, in one call, and only one watcher acts at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from simulator.seed import CONDUCTOR_API_KEY, PRODUCTION_ID, STAGING_ID, WEB_ROLE
from tests.support.plan_harness import Harness, plan_harness, rules_with
from tests.support.stack import running_stack
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.outcomes import read_deployment_outcome
from workers.plans import Plan
from workers.runner import worker_context
from workers.task_watcher import RELAY_JOB, TaskWatcher
from workers.watch_records import WATCHER_LOCK, WatchRecords

T = TypeVar("T")
# Without the watcher, a plan's timer would look at its deployment only after an hour.
RULES = rules_with().replace("task_check_seconds: 1\n", "task_check_seconds: 3600\n")


@pytest.fixture
def harness(connection: redis.Redis, keys: RedisKeys) -> Iterator[Harness]:
    with plan_harness(connection, keys, rules=RULES, step_duration=0.2) as harness:
        yield harness


def watch_until(harness: Harness, watchers: list[TaskWatcher], what: str, probe: Callable[[], T | None]) -> T:
    """Turn each watcher once, then run the jobs due, until `probe` answers."""
    queue = Queue(harness.keys.queue_name, connection=harness.connection, serializer=JSONSerializer)
    worker = SimpleWorker([queue], connection=harness.connection, serializer=JSONSerializer)
    deadline = time.monotonic() + 60
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            plans = "\n".join(plan.model_dump_json(indent=1) for plan in harness.plans.recent())
            raise AssertionError(f"timed out waiting for {what}:\n{plans}")
        for watcher in watchers:
            watcher.step()
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        time.sleep(0.2)


def finished_plan(harness: Harness) -> Plan | None:
    plans = harness.plans.recent()
    return plans[0] if plans and plans[0].status != "running" else None


def watcher_with_own_client(harness: Harness, name: str) -> tuple[TaskWatcher, OctopusClient]:
    """A watcher as another worker process would have it: its own Octopus client, so its calls count apart."""
    client = OctopusClient(base_url=harness.sim_url, api_key=CONDUCTOR_API_KEY)
    context = worker_context(
        connection=harness.connection, keys=harness.keys, rules=harness.context.rules, octopus=client
    )
    return TaskWatcher(context, name=name), client


def test_the_watcher_moves_a_plan_on_with_no_webhook_and_no_timer(harness: Harness) -> None:
    watcher = TaskWatcher(harness.context, name="worker-a")
    machine = harness.add_machine("stg-web-watched", [STAGING_ID], [WEB_ROLE])
    harness.machine_added(machine)

    plan = watch_until(harness, [watcher], "the plan to finish", lambda: finished_plan(harness))

    assert [step.status for step in plan.steps] == ["skipped", "succeeded", "skipped", "succeeded"]
    calls = harness.client.calls
    assert calls["GET /api/tasks"] >= 2  # one call a look, for every task in flight
    assert calls["GET /api/tasks/{id}"] == 0  # the plan never read its task itself
    for step in plan.steps:
        if step.deployment_id is not None:
            outcome = read_deployment_outcome(harness.context, step.deployment_id)
            assert outcome is not None
            assert outcome["source"] == "task watcher"
            assert outcome["result"] == "Success"


def test_two_watchers_never_watch_the_same_task(harness: Harness) -> None:
    first, first_client = watcher_with_own_client(harness, "worker-a")
    second, second_client = watcher_with_own_client(harness, "worker-b")
    records = WatchRecords(harness.connection, harness.keys.prefix)
    one = harness.add_machine("stg-web-one", [STAGING_ID], [WEB_ROLE])
    harness.machine_added(one)

    plan = watch_until(harness, [first, second], "the first plan to finish", lambda: finished_plan(harness))
    tasks = [step.task_id for step in plan.steps if step.task_id]
    assert len(tasks) == 2
    assert [records.watchers_of(task) for task in tasks] == [{"worker-a"}, {"worker-a"}]
    assert second.looks == 0
    assert second_client.calls["GET /api/tasks"] == 0
    assert first_client.calls["GET /api/tasks"] == first.looks > 0

    # The holder stops (its worker goes): the other takes over, and again one watches each task.
    harness.context.locks.release(WATCHER_LOCK, first.name)
    looks_before = first.looks
    two = harness.add_machine("stg-web-two", [STAGING_ID], [WEB_ROLE])
    harness.machine_added(two)
    latest = watch_until(
        harness,
        [second],
        "the second plan to finish",
        lambda: next((p for p in harness.plans.recent() if p.id != plan.id and p.status != "running"), None),
    )
    later_tasks = [step.task_id for step in latest.steps if step.task_id]
    assert [records.watchers_of(task) for task in later_tasks] == [{"worker-b"}, {"worker-b"}]
    assert first.looks == looks_before
    first_client.close()
    second_client.close()


def test_a_pending_intervention_is_handed_to_the_relay_once(connection: redis.Redis, keys: RedisKeys) -> None:
    rules = RULES.replace("    approvals:\n      enabled: false\n", "    approvals:\n      enabled: true\n")
    with plan_harness(connection, keys, rules=rules) as harness:
        watcher = TaskWatcher(harness.context, name="worker-a")
        machine = harness.add_machine("prod-web-watched", [PRODUCTION_ID], [WEB_ROLE])
        harness.machine_added(machine)
        queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)

        def relay_jobs() -> list[str]:
            scheduled = ScheduledJobRegistry(queue=queue).get_job_ids()
            jobs = [queue.fetch_job(job_id) for job_id in queue.get_job_ids() + scheduled]
            return [job.id for job in jobs if job is not None and job.func_name == RELAY_JOB]

        def handed() -> list[str] | None:
            watcher.step()
            return relay_jobs() or None

        deadline = time.monotonic() + 60
        while not handed():
            assert time.monotonic() < deadline, "no interruption handed to the relay"
            SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
                burst=True, logging_level="WARNING"
            )
            time.sleep(0.2)
        for _ in range(3):  # more looks at the same pending task hand nothing more over
            watcher._next_look = 0.0
            watcher.step()
        assert len(relay_jobs()) == 1
        SimpleWorker([queue], connection=connection, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING"
        )
        assert harness.context.approvals.recent(), "the relay's own entry ran: its record is there"


def test_two_conductor_workers_move_a_plan_on_with_only_machine_events_delivered(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, window=0.2, workers=0) as stack:
        rules = tmp_path / "rules.yaml"
        rules.write_text(rules.read_text().replace("task_check_seconds: 1\n", "task_check_seconds: 3600\n"))
        with stack.admin as admin:
            (subscription,) = admin.get("/api/subscriptions/all").json()
            subscription["EventNotificationSubscription"]["Filter"]["EventCategories"] = ["MachineAdded"]
            assert admin.put(f"/api/subscriptions/{subscription['Id']}", json=subscription).status_code == 200
        stack.start_worker()
        stack.start_worker()
        stack.add_machine("stg-web-e2e", STAGING_ID, [WEB_ROLE])

        (plan,) = stack.finished_plans(1)

        assert plan.status == "succeeded"
        records = WatchRecords(stack.connection, keys.prefix)
        tasks = [step.task_id for step in plan.steps if step.task_id]
        watchers = [records.watchers_of(task) for task in tasks]
        assert len(tasks) == 2
        assert all(len(names) == 1 for names in watchers), watchers
        context = worker_context(connection=stack.connection, keys=keys)
        for step in plan.steps:
            if step.deployment_id is not None:
                outcome = read_deployment_outcome(context, step.deployment_id)
                assert outcome is not None
                assert outcome["source"] == "task watcher"
