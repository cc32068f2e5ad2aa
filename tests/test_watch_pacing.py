"""How soon the task watcher looks again, and the name cache dropping what Octopus contradicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from workers.directory import Directory, UnknownName
from workers.octopus import OctopusClient, OctopusNotFound
from workers.watch_pacing import (
    CLOSE_SECONDS,
    LONG_SECONDS,
    PEOPLE_SECONDS,
    QUEUED_MAX_SECONDS,
    look_again_in,
    run_seconds,
)

NOW = datetime(2025, 3, 4, 11, 30, tzinfo=UTC)


def at(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat()


def test_a_running_task_with_no_history_is_looked_at_every_second() -> None:
    task = {"State": "Executing", "StartTime": at(3)}
    assert look_again_in(task, now=NOW, usual_seconds=None) == CLOSE_SECONDS


def test_a_task_expected_to_run_long_is_looked_at_half_way_to_its_usual_end_and_then_every_second() -> None:
    assert look_again_in({"State": "Executing", "StartTime": at(10)}, now=NOW, usual_seconds=30) == 10
    assert look_again_in({"State": "Executing", "StartTime": at(0)}, now=NOW, usual_seconds=600) == LONG_SECONDS
    assert look_again_in({"State": "Executing", "StartTime": at(29)}, now=NOW, usual_seconds=30) == CLOSE_SECONDS
    assert look_again_in({"State": "Executing", "StartTime": at(90)}, now=NOW, usual_seconds=30) == CLOSE_SECONDS


def test_a_queued_task_is_looked_at_less_often_the_longer_it_waits() -> None:
    assert look_again_in({"State": "Queued", "QueueTime": at(0)}, now=NOW, usual_seconds=None) == CLOSE_SECONDS
    assert look_again_in({"State": "Queued", "QueueTime": at(8)}, now=NOW, usual_seconds=None) == 3.0
    waited = {"State": "Queued", "QueueTime": at(600)}
    assert look_again_in(waited, now=NOW, usual_seconds=None) == QUEUED_MAX_SECONDS


def test_a_task_waiting_on_people_backs_off_unless_the_relay_was_just_handed_it() -> None:
    task = {"State": "Executing", "StartTime": at(5), "HasPendingInterruptions": True}
    assert look_again_in(task, now=NOW, usual_seconds=None) == PEOPLE_SECONDS
    just = NOW - timedelta(seconds=2)
    assert look_again_in(task, now=NOW, usual_seconds=None, relay_handed_at=just) == CLOSE_SECONDS
    long_ago = NOW - timedelta(minutes=5)
    assert look_again_in(task, now=NOW, usual_seconds=None, relay_handed_at=long_ago) == PEOPLE_SECONDS


def test_run_seconds_is_start_to_completion() -> None:
    assert run_seconds({"StartTime": at(12.5), "CompletedTime": at(0)}) == 12.5
    assert run_seconds({"StartTime": at(1), "CompletedTime": None}) is None


def directory_over(handler: httpx.MockTransport) -> tuple[Directory, OctopusClient]:
    client = OctopusClient(base_url="http://octopus.test", api_key="API-TEST", transport=handler)
    return Directory(client), client


def test_a_404_for_a_cached_id_drops_what_holds_it_and_the_next_lookup_asks_again() -> None:
    answers = {"/api/Spaces-1/projects/all": [[{"Id": "Projects-5", "Name": "Web API"}], []]}
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/deploymentprocesses/deploymentprocess-Projects-5"):
            return httpx.Response(404, json={"ErrorMessage": "The resource 'x' was not found.", "Errors": []})
        queue = answers[request.url.path]
        return httpx.Response(200, json=queue.pop(0) if len(queue) > 1 else queue[0])

    directory, client = directory_over(httpx.MockTransport(handle))
    assert directory.project("Spaces-1", "Web API")["Id"] == "Projects-5"
    assert directory.project("Spaces-1", "Web API")["Id"] == "Projects-5"
    assert asked.count("/api/Spaces-1/projects/all") == 1  # cached

    with pytest.raises(OctopusNotFound):
        client.get("/api/Spaces-1/deploymentprocesses/deploymentprocess-Projects-5")
    with pytest.raises(UnknownName):  # the project is gone: the list read afresh no longer has it
        directory.project("Spaces-1", "Web API")
    assert asked.count("/api/Spaces-1/projects/all") == 3  # asked again at once, then once more for the miss


def test_a_process_read_with_another_version_replaces_the_cached_one() -> None:
    versions = iter([{"Id": "deploymentprocess-Projects-5", "Version": 3}])

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(versions))

    directory, _ = directory_over(httpx.MockTransport(handle))
    assert directory.process("Spaces-1", "deploymentprocess-Projects-5")["Version"] == 3
    assert directory.saw_process("Spaces-1", {"Id": "deploymentprocess-Projects-5", "Version": 3}) is False
    assert directory.saw_process("Spaces-1", {"Id": "deploymentprocess-Projects-5", "Version": 4}) is True
    assert directory.process("Spaces-1", "deploymentprocess-Projects-5")["Version"] == 4  # no call: StopIteration
