"""Promotions on a schedule: the scheduler's clock is moved by hand, a fire time runs once however many
schedulers tick, a run missed within its grace runs once late and one missed beyond it is reported; the
workers promote, in order, every component with a newer release in the source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from simulator.seed import CONDUCTOR_API_KEY, DEVELOPMENT_ID, SPACE_ID, TEST_ID, WEB_API_ID, WEB_UI_ID
from tests.support.stack import Stack, rules_text, running_stack, wait_for
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plans import Plan
from workers.promotion_schedule import PromotionScheduler, latest_due
from workers.rules import RulesError, ScheduleRule, parse_rules
from workers.runner import worker_context
from workers.runtime import WorkerContext

LONDON = ZoneInfo("Europe/London")
NOON = {"name": "noon-and-evening", "cron": "0 12,19 * * *", "timezone": "Europe/London"}
SCHEDULE = {**NOON, "from": "Development", "to": "Test", "grace_seconds": 1800}
RULES = {"release_pattern": "2021.3.0.*", "promotion": {"task_check_seconds": 1}, "schedules": [SCHEDULE]}


def at(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (at(2026, 12, 1, 12, 0, 5), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        (at(2026, 12, 1, 18, 59, 59), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        (at(2026, 12, 1, 19, 0, 0), datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),  # a fire time counts at once
        (at(2026, 7, 1, 12, 0, 30), datetime(2026, 7, 1, 11, 0, tzinfo=UTC)),  # British Summer Time
        (at(2026, 12, 2, 9, 0), datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),
    ],
)
def test_the_latest_fire_time_is_read_in_the_schedules_time_zone(now: datetime, due: datetime) -> None:
    assert latest_due(ScheduleRule.model_validate({**NOON, "to": "Test"}), now) == due


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cron": "every day at noon"}, "is not a five-field cron expression"),
        ({"timezone": "Europe/Atlantis"}, "is not an IANA time zone"),
    ],
)
def test_rules_refuse_a_bad_cron_or_time_zone(change: dict[str, str], problem: str) -> None:
    text = rules_text(window=0, orchestration={"schedules": [{**SCHEDULE, **change}]})

    with pytest.raises(RulesError) as refused:
        parse_rules(text)

    assert problem in "\n".join(refused.value.problems)


@pytest.fixture
def stack(redis_url: str, keys: RedisKeys, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, keys, tmp_path, orchestration=RULES) as running:
        yield running


@pytest.fixture
def context(stack: Stack, tmp_path: Path) -> Iterator[WorkerContext]:
    rules = parse_rules(rules_text(window=0.5, orchestration=RULES))
    with OctopusClient(base_url=stack.sim_url, api_key=CONDUCTOR_API_KEY) as client:
        yield worker_context(connection=stack.connection, keys=stack.keys, rules=rules, octopus=client)


def new_release_in_development(stack: Stack, project_id: str, version: str) -> None:
    """What the build server does: a new release, deployed to Development."""
    with stack.admin as admin:
        release: dict[str, Any] = admin.post(
            f"/api/{SPACE_ID}/releases", json={"ProjectId": project_id, "Version": version}
        ).json()
        deployment = admin.post(
            f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release["Id"], "EnvironmentId": DEVELOPMENT_ID}
        ).json()

        def succeeded() -> bool:
            return bool(admin.get(f"/api/tasks/{deployment['TaskId']}").json()["State"] == "Success")

        wait_for(f"{version} in Development", succeeded, timeout=30)


def promotions(stack: Stack) -> list[Plan]:
    return stack.plans.recent(promotions_only=True)


def finished_promotion(stack: Stack) -> Plan:
    def probe() -> Plan | None:
        found = promotions(stack)
        return found[0] if found and found[0].status not in ("planned", "running") else None

    return wait_for("the scheduled promotion to end", probe, timeout=90)


@pytest.mark.slow
def test_at_noon_the_schedule_promotes_what_is_newer_in_development_to_test_in_order(
    stack: Stack, context: WorkerContext
) -> None:
    new_release_in_development(stack, WEB_API_ID, "2021.3.0.3")
    new_release_in_development(stack, WEB_UI_ID, "2021.3.0.2")
    scheduler = PromotionScheduler(context, clock=lambda: at(2026, 12, 1, 12, 0, 4))

    (run,) = scheduler.tick()
    plan = finished_promotion(stack)

    assert (run.schedule, run.due, run.outcome) == (
        "noon-and-evening",
        datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        "queued",
    )
    assert plan.status == "succeeded"
    assert plan.environment_id == TEST_ID
    assert plan.requested_by == "schedule noon-and-evening, due 2026-12-01T12:00:00+00:00"
    assert [(step.project, step.status, step.release_version) for step in plan.steps] == [
        ("Database", "skipped", None),  # already current in Test
        ("Web API", "succeeded", "2021.3.0.3"),
        ("Scheduling Service", "skipped", None),
        ("Web UI", "succeeded", "2021.3.0.2"),
    ]
    assert "already current" in (plan.steps[0].reason or "")


@pytest.mark.slow
def test_a_fire_time_runs_once_however_many_schedulers_tick(stack: Stack, context: WorkerContext) -> None:
    clock = lambda: at(2026, 12, 1, 19, 0, 1)  # noqa: E731
    first, second = PromotionScheduler(context, clock=clock), PromotionScheduler(context, clock=clock)

    runs = [first.tick(), second.tick()]  # the second stands by: the first holds the lock
    first.stop()
    runs += [second.tick(), first.tick()]  # now the second acts, and finds the fire time done

    assert [len(found) for found in runs] == [1, 0, 0, 0]
    finished_promotion(stack)
    assert len(promotions(stack)) == 1


@pytest.mark.slow
def test_a_missed_run_within_its_grace_runs_once_and_one_beyond_it_is_reported(
    stack: Stack, context: WorkerContext
) -> None:
    late = PromotionScheduler(context, clock=lambda: at(2026, 12, 1, 12, 25))  # 25 min late, grace 30 min
    (caught_up,) = late.tick()
    again = late.tick()
    late.stop()
    finished_promotion(stack)
    too_late = PromotionScheduler(context, clock=lambda: at(2026, 12, 1, 19, 45))  # 45 min late
    (missed,) = too_late.tick()

    assert caught_up.outcome == "queued"
    assert again == []
    assert (missed.due, missed.outcome) == (datetime(2026, 12, 1, 19, 0, tzinfo=UTC), "missed")
    assert len(promotions(stack)) == 1
