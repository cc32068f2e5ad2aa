"""The running time every deployment limit counts: Executing with no pending interruption, between looks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.running_time import RunningTime, is_running, tally

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def looks(*observations: tuple[float, bool]) -> RunningTime:
    current = RunningTime()
    for seconds, running in observations:
        current = tally(current, running=running, at=T0 + timedelta(seconds=seconds))
    return current


def test_time_between_two_looks_that_saw_it_running_counts() -> None:
    assert looks((0, True), (10, True), (25, True)).seconds == 25


def test_waiting_for_people_or_in_the_queue_does_not_count() -> None:
    # Queued, then running 10 s, then a manual intervention for an hour, then running 5 s more.
    tally_ = looks((0, False), (5, True), (15, True), (20, False), (3620, False), (3625, True), (3630, True))
    assert tally_.seconds == 15
    assert tally_.looks == 7


def test_is_running_reads_the_task_resource() -> None:
    assert is_running({"State": "Executing", "HasPendingInterruptions": False})
    assert not is_running({"State": "Executing", "HasPendingInterruptions": True})
    assert not is_running({"State": "Queued", "HasPendingInterruptions": False})
    assert not is_running({"State": "Cancelling"})


def test_a_look_out_of_order_adds_nothing() -> None:
    assert looks((10, True), (5, True)).seconds == 0
