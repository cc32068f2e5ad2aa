"""Redis connections with timeouts short enough that a dead Redis is an error, not a hang.

`memory://` names the in-process stand-in the demo runs on where no Redis is reachable: every client
made for it in one process shares one fakeredis server. It keeps nothing and is never shared between
processes, so only `conductor demo`, which runs every part in one process, may use it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    import fakeredis


def _retry() -> Retry:
    # One quick retry covers a connection dropped by a Redis restart; more would only delay the 503.
    return Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1)


MEMORY_URL = "memory://"


@functools.cache
def _memory_server() -> fakeredis.FakeServer:
    import fakeredis  # costs a quarter of a second; only the demo needs it

    return fakeredis.FakeServer()


def connect(url: str, *, timeout: float) -> redis.Redis:
    if url.startswith(MEMORY_URL):
        import fakeredis

        return fakeredis.FakeRedis(server=_memory_server())
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=_retry(), health_check_interval=30
    )


def connect_async(url: str, *, timeout: float) -> redis.asyncio.Redis:
    if url.startswith(MEMORY_URL):
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=_memory_server())
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=_retry(), health_check_interval=30
    )


def as_text(value: bytes | str) -> str:
    """Redis answers bytes unless a client decodes; the conductor's keys and values are UTF-8."""
    return value.decode() if isinstance(value, bytes) else value
