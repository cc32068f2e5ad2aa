"""Octopus and the plan always agree: deployment limits count running time only and end in a cancel, every
error inside a step ends in a stated state with its locks released, lost timers are swept up, and a POST
that got no answer never becomes a second deployment. In-process plans, the simulator over HTTP, real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from service.settings import Settings
from service.status import read_status, render
from simulator.seed import PRODUCTION_ID, STAGING_ID, WEB_API_ID, WEB_ROLE
from tests.support.plan_harness import Harness, plan_harness, rules_with
from tests.support.stack import people_approving
from workers.events import utcnow
from workers.keys import RedisKeys
from workers.locks import Locks
from workers.octopus import RetryPolicy
from workers.plan_sweep import sweep_plans
from workers.plans import Plan, PlanStep, PlanStore
from workers.reconciler import reconcile_once
from workers.runner import build_worker

pytestmark = pytest.mark.slow
LIMIT = 2


def web_api(plan: Plan) -> PlanStep:
    return next(step for step in plan.steps if step.project == "Web API")


def only_plan(harness: Harness) -> Plan:
    (plan,) = harness.plans.recent()
    return plan


def no_lock_held(connection: redis.Redis, keys: RedisKeys, plan: Plan) -> bool:
    locks = Locks(connection, keys.prefix)
    names = [plan.lock_name(step) for step in plan.steps] + [plan.machine_lock_name(m) for m in plan.machine_ids]
    return all(locks.holder(name) is None for name in names)


@pytest.fixture
def limited(connection: redis.Redis, keys: RedisKeys) -> Iterator[Harness]:
    rules = rules_with(redeploy_settings={"deployment_timeout_seconds": LIMIT})
    with plan_harness(connection, keys, rules=rules) as harness:
        yield harness


def test_a_deployment_waiting_for_approval_past_the_limit_is_neither_failed_nor_canceled(limited: Harness) -> None:
    machine = limited.add_machine("prod-web-wait", [PRODUCTION_ID], [WEB_ROLE])
    limited.machine_added(machine)

    def waited_long() -> PlanStep | None:
        step = web_api(only_plan(limited))
        looked = step.running.last_look_at
        waited = looked is not None and step.started_at is not None and looked - step.started_at
        return step if waited and waited.total_seconds() > 3 * LIMIT else None

    step = limited.run_until("the conductor to watch a waiting deployment for 3 limits", waited_long)

    assert step.status == "deploying"
    assert step.task_id is not None
    task = limited.task(step.task_id)
    assert task["State"] == "Executing"
    assert task["HasPendingInterruptions"] is True
    assert step.running.seconds < LIMIT
    with people_approving(limited.sim_url):
        (plan,) = limited.finished(timeout=90)
    assert plan.status == "succeeded"
    assert web_api(plan).status == "succeeded"
    assert limited.task(step.task_id)["State"] == "Success"
    assert all(seen.status != "cancelling" for past in limited.seen for seen in past.steps)


def test_a_deployment_running_past_the_limit_is_canceled_in_octopus_then_failed(
    limited: Harness, connection: redis.Redis, keys: RedisKeys
) -> None:
    limited.set_clock(StepDurationSeconds=60)
    machine = limited.add_machine("stg-web-long", [STAGING_ID], [WEB_ROLE])
    limited.machine_added(machine)

    def is_cancelling() -> Plan | None:
        plan = only_plan(limited)
        return plan if web_api(plan).status == "cancelling" else None

    cancelling = limited.run_until("the step to be cancelling", is_cancelling)
    shown = render(read_status(connection, keys))
    (plan,) = limited.finished()

    step = web_api(plan)
    assert web_api(cancelling).reason is not None
    assert f"past the limit of {LIMIT} s of running time" in (web_api(cancelling).reason or "")
    assert "cancelling" in shown
    assert "past the limit" in shown
    assert step.task_id is not None
    assert limited.task(step.task_id)["State"] == "Canceled"
    assert step.status == "failed"
    assert "after the conductor canceled it" in (step.reason or "")
    assert plan.status == "failed"
    assert next(s for s in plan.steps if s.project == "Web UI").status == "not_run"
    assert no_lock_held(connection, keys, plan)


def test_an_unknown_channel_fails_the_step_with_its_reason_and_releases_the_lock(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    with plan_harness(connection, keys, rules=rules_with(channels={"Web API": "Hotfix"})) as harness:
        machine = harness.add_machine("stg-web-hotfix", [STAGING_ID], [WEB_ROLE])
        harness.machine_added(machine)
        (plan,) = harness.finished()

    step = web_api(plan)
    assert step.status == "failed"
    assert "no channel named 'Hotfix'" in (step.reason or "")
    assert plan.status == "failed"
    assert next(s for s in plan.steps if s.project == "Web UI").status == "not_run"
    assert plan.timer is None
    assert no_lock_held(connection, keys, plan)


def test_octopus_unavailable_past_the_retries_leaves_the_step_waiting_with_a_timer_and_no_lock(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    quick = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1, max_elapsed=1.0)
    with plan_harness(connection, keys, retry=quick) as harness:
        harness.add_fault(Method="GET", PathPattern="/api/*/deployments/preview/*", Status=503)
        machine = harness.add_machine("stg-web-503", [STAGING_ID], [WEB_ROLE])
        harness.machine_added(machine)

        waiting = only_plan(harness)
        step = waiting.current_step()
        assert step is not None
        assert step.status == "pending"
        assert step.retry_at is not None
        assert "Octopus is unavailable (HTTP 503)" in (step.reason or "")
        assert "trying again at" in (step.reason or "")
        assert waiting.timer is not None
        assert waiting.check_due is not None
        assert waiting.check_due >= step.retry_at
        assert no_lock_held(connection, keys, waiting)

        harness.clear_faults()
        (plan,) = harness.finished()
    assert plan.status == "succeeded"
    assert web_api(plan).status == "succeeded"


def test_the_sweep_moves_on_a_running_plan_that_lost_its_timer(
    connection: redis.Redis, keys: RedisKeys, settings: Settings
) -> None:
    with plan_harness(connection, keys) as harness:
        harness.set_clock(StepDurationSeconds=1.0)
        machine = harness.add_machine("stg-web-lost", [STAGING_ID], [WEB_ROLE])
        harness.machine_added(machine)
        # As if the worker holding the timer died: no timer job, and the plan's timer long overdue.
        queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
        plan = only_plan(harness)
        plan.timer, plan.check_due = None, None
        harness.plans.save(plan)
        harness.run_until("the deployment to end", lambda: harness.task(web_api(plan).task_id or "")["IsCompleted"])
        harness.run_until("a few idle rounds", lambda: len(harness.seen) > 5)
        assert only_plan(harness).status == "running"  # nothing moves it on by itself

        result = reconcile_once(
            client=harness.client,
            queue=settings.event_queue(connection),
            connection=connection,
            categories=["MachineAdded"],
            spaces=["Spaces-1"],
            lookback=timedelta(minutes=5),
        )
        (finished,) = harness.finished()

    assert result.plans_woken == 1
    assert finished.status == "succeeded"
    assert sweep_plans(harness.plans, harness.context.require_scheduler()) == []


def test_a_post_that_times_out_never_leads_to_a_second_deployment(connection: redis.Redis, keys: RedisKeys) -> None:
    rules = rules_with(redeploy_settings={"create_grace_seconds": 6})
    with plan_harness(connection, keys, rules=rules, client_timeout=1.0) as harness:
        before = harness.last_deployment_number()
        # Octopus takes 3 s over the POST, the client gives up after 1 s; Octopus creates the deployment anyway.
        harness.add_fault(Method="POST", PathPattern="/api/*/deployments", HangSeconds=3, Count=1)
        machine = harness.add_machine("stg-web-hang", [STAGING_ID], [WEB_ROLE])
        harness.machine_added(machine)

        uncertain = web_api(only_plan(harness))
        (plan,) = harness.finished()
        deployments = harness.deployments_since(before)

    assert uncertain.status == "creating"
    assert uncertain.uncertain_since is not None
    assert "Octopus may still create it: looking for it at" in (uncertain.reason or "")
    assert [d["ProjectId"] for d in deployments].count(WEB_API_ID) == 1
    assert web_api(plan).deployment_id == next(d["Id"] for d in deployments if d["ProjectId"] == WEB_API_ID)
    assert plan.status == "succeeded"


def test_a_worker_starting_sweeps_the_plans_that_lost_their_timer(connection: redis.Redis, keys: RedisKeys) -> None:
    plans = PlanStore(connection, keys.prefix)
    lost = Plan(
        id="plan-lost",
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id=STAGING_ID,
        tenant_id=None,
        machine_ids=["Machines-99"],
        steps=[PlanStep(project="Web API")],
    )
    timed = lost.model_copy(update={"id": "plan-timed", "timer": "t", "check_due": utcnow() + timedelta(minutes=1)})
    plans.save(lost)
    plans.save(timed)

    build_worker(connection=connection, keys=keys)

    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    assert [(job.func_name, job.args) for job in queue.jobs] == [("workers.jobs.advance_plan", ["plan-lost"])]
