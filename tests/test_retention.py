"""Every record has a retention: with CONDUCTOR_RETENTION_SECONDS (and the dedupe window) a few seconds long,
the conductor's keys shrink back to a bounded set once the work is done. The whole product runs: simulator,
intake, a worker process, real Redis; a new machine's redeploy plan, its approvals relayed, its outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from simulator.seed import PRODUCTION_ID
from tests.support.stack import Stack, running_stack, wait_for
from workers.approval_records import LONGEST_KEEP_LOOKING_SECONDS, ApprovalRelay, ApprovalStore
from workers.keys import RedisKeys
from workers.plans import Plan, PlanStep, PlanStore
from workers.retention import Retention

SHORT = {
    "retention_seconds": 3,
    "dedupe_window_seconds": 3,
    "reconcile_lookback_seconds": 2,
    "reconcile_overlap_seconds": 1,
}
FAST_LOOKS = {"look_again_seconds": 0.5, "look_again_max_seconds": 1, "keep_looking_seconds": 30}
# What stays however long the conductor runs: one counter, and the recent-events list it trims to a fixed length.
BOUNDED = {"plan-counter", "recent-events"}
# The task watcher's own, while a worker runs: its lock, its heartbeat and its latest sightings, each expiring
# within two minutes unless renewed (`workers.watch_records`).
PACED = ("lock:task-watcher", "watch:alive", "watch:seen:")


def paced(key: str) -> bool:
    return key.startswith(PACED)


def conductor_keys(stack: Stack) -> set[str]:
    """The conductor's own keys, without the prefix (RQ's keys are bounded by its result and failure TTLs)."""
    prefix = f"{stack.keys.prefix}:"
    return {key.decode()[len(prefix) :] for key in stack.connection.scan_iter(match=f"{prefix}*", count=1000)}


@pytest.mark.slow
def test_after_the_work_the_conductors_keys_shrink_back_to_a_bounded_set(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, approvals=FAST_LOOKS, settings=SHORT) as stack:
        stack.add_machine("prod-web-11", PRODUCTION_ID, ["web-server"])
        (plan,) = stack.finished_plans(1, timeout=60)
        during = conductor_keys(stack)

        def shrunk() -> tuple[set[str]] | None:
            found = {key for key in conductor_keys(stack) if not paced(key)}
            return (found,) if found <= BOUNDED else None

        try:
            (left,) = wait_for("the records to expire", shrunk, timeout=30)
        except AssertionError:
            raise AssertionError(f"still there: {sorted(conductor_keys(stack) - BOUNDED)}") from None
        watcher_ttls = [
            stack.connection.ttl(f"{stack.keys.prefix}:{key}") for key in conductor_keys(stack) if paced(key)
        ]

    assert plan.status == "succeeded"
    kinds = {key.split(":")[0] for key in during}
    assert {"plan", "plans", "approval", "approvals", "binding", "deployment", "deployments", "seen"} <= kinds
    assert left <= BOUNDED
    assert all(0 < ttl <= 120 for ttl in watcher_ttls)


def test_a_record_in_progress_is_kept_until_it_ends_then_for_the_retention(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    retention = Retention(2)
    plans = PlanStore(connection, keys.prefix, retention=retention)
    plan = Plan(
        id="plan-1",
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id="Environments-4",
        tenant_id=None,
        machine_ids=["Machines-1"],
        steps=[PlanStep(project="Web API", deployment_id="Deployments-9")],
    )
    plans.save(plan)
    running_ttl = (
        connection.ttl(f"{keys.prefix}:plan:plan-1"),
        connection.ttl(f"{keys.prefix}:plan-deployment:Deployments-9"),
    )
    plan.status = "succeeded"
    plans.save(plan)
    ended_ttl = (
        connection.ttl(f"{keys.prefix}:plan:plan-1"),
        connection.ttl(f"{keys.prefix}:plan-deployment:Deployments-9"),
    )

    assert running_ttl == (-1, -1)  # no expiry while it runs
    assert all(0 < ttl <= 2 for ttl in ended_ttl)
    assert 0 < connection.ttl(f"{keys.prefix}:plans") <= 2  # the index expires unless written again


def test_an_approval_still_looking_is_kept_while_it_may_look_then_for_the_retention(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    approvals = ApprovalStore(connection, keys.prefix, retention=Retention(2))
    record = ApprovalRelay(
        interruption_id="Interruptions-1",
        space_id="Spaces-1",
        orchestration="sample-app",
        step="QA approval",
        project="Web API",
        release_id="Releases-8",
        release_version="2021.2.0.1",
        environment_id="Environments-4",
        environment="Production",
        tenant_id=None,
        tenant=None,
        deployment_id="Deployments-9",
        task_id="ServerTasks-9",
    )
    approvals.save(record)
    looking_ttl = connection.ttl(f"{keys.prefix}:approval:Interruptions-1")
    record.status = "refused"
    approvals.save(record)

    assert looking_ttl == LONGEST_KEEP_LOOKING_SECONDS + 2
    assert 0 < connection.ttl(f"{keys.prefix}:approval:Interruptions-1") <= 2


def test_an_index_drops_what_is_older_than_the_retention_when_written(connection: redis.Redis, keys: RedisKeys) -> None:
    plans = PlanStore(connection, keys.prefix, retention=Retention(60))
    old = datetime.now(UTC) - timedelta(seconds=120)
    for plan_id, created in (("plan-1", old), ("plan-2", datetime.now(UTC))):
        plans.save(
            Plan(
                id=plan_id,
                orchestration="sample-app",
                space_id="Spaces-1",
                environment_id="Environments-4",
                tenant_id=None,
                machine_ids=[],
                steps=[],
                status="succeeded",
                created_at=created,
            )
        )

    assert [plan.id for plan in plans.recent()] == ["plan-2"]
