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

from workers.keys import RedisKeys
from workers.redis_client import as_text

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/11"


def test_redis_url() -> str:
    return os.environ.get("CONDUCTOR_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


def remove_prefix(connection: redis.Redis, keys: RedisKeys) -> None:
    patterns = [f"{keys.prefix}:*", f"rq:*{keys.prefix}*"]
    for pattern in patterns:
        batch = list(connection.scan_iter(match=pattern, count=1000))
        if batch:
            connection.delete(*batch)
    connection.srem("rq:queues", f"rq:queue:{keys.queue_name}")
    for worker_key in connection.smembers("rq:workers"):
        if keys.prefix in as_text(worker_key):
            connection.srem("rq:workers", worker_key)


@contextmanager
def redis_space(url: str | None = None) -> Iterator[tuple[redis.Redis, RedisKeys]]:
    connection = redis.Redis.from_url(url or test_redis_url())
    keys = RedisKeys(f"t{uuid.uuid4().hex[:10]}")
    try:
        yield connection, keys
    finally:
        remove_prefix(connection, keys)
        connection.close()
