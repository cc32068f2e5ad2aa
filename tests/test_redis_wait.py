"""Waiting for Redis at start-up, and Redis URLs shown without their password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.private_redis import PrivateRedis
from workers.redis_url import without_password
from workers.redis_wait import redis_location, unreachable_message, wait_for_redis


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://conductor:hunter2@redis:6380/2", "rediss://conductor:***@redis:6380/2"),
        ("redis://hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("unix:///run/redis.sock?db=1&password=hunter2", "unix:///run/redis.sock?db=1&password=***"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert without_password(url) == shown
    assert "hunter2" not in without_password(url)


def test_a_redis_that_answers_is_not_waited_for(redis_url: str) -> None:
    log = RecordingLog()
    slept: list[float] = []

    wait_for_redis(redis.Redis.from_url(redis_url), what="conductor worker", log=log, sleep=slept.append)

    assert slept == []
    assert log.lines == []


def test_waits_with_growing_capped_delays_says_so_once_and_once_when_back(tmp_path: Path) -> None:
    private = PrivateRedis(tmp_path)
    # No retries of its own, so that every PING is one attempt and the sleeps are the wait_for_redis's.
    connection = redis.Redis(
        host="127.0.0.1", port=private.port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    log = RecordingLog()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 7:
            private.start()

    try:
        wait_for_redis(connection, what="conductor worker", log=log, sleep=sleep)
    finally:
        private.stop()

    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert [(level, event) for level, event, _ in log.lines] == [
        ("warning", "conductor worker: Redis unreachable; waiting for it"),
        ("info", "conductor worker: Redis is back"),
    ]
    assert log.lines[0][2]["redis"] == f"redis://127.0.0.1:{private.port}/0"
    assert log.lines[0][2]["error"] == "Connection refused"


def test_location_masks_the_password() -> None:
    connection = redis.Redis.from_url("redis://:hunter2@redis.example:6390/3")

    assert redis_location(connection) == "redis://:***@redis.example:6390/3"


def test_the_message_names_the_url_and_the_fix() -> None:
    error = redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    message = unreachable_message("redis://:***@127.0.0.1:1/0", error)

    assert message == (
        "cannot reach Redis at redis://:***@127.0.0.1:1/0 (Connection refused): start Redis there, "
        "or set CONDUCTOR_REDIS_URL to the Redis the conductor uses"
    )
