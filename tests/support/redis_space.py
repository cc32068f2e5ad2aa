"""A private corner of a real Redis for one test: its own prefix, removed afterwards.

Tests never flush a database; they delete exactly the keys their prefix produced (the conductor's keys
and the RQ keys whose names carry the prefix as queue name or job id).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from workers.keys import RedisKeys, delete_all

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/11"


def test_redis_url() -> str:
    return os.environ.get("CONDUCTOR_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


@contextmanager
def redis_space(url: str | None = None) -> Iterator[tuple[redis.Redis, RedisKeys]]:
    connection = redis.Redis.from_url(url or test_redis_url())
    keys = RedisKeys(f"t{uuid.uuid4().hex[:10]}")
    try:
        yield connection, keys
    finally:
        delete_all(connection, keys)
        connection.close()
