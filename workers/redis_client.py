"""Redis connections with timeouts short enough that a dead Redis is an error, not a hang."""

from __future__ import annotations

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def _retry() -> Retry:
    # One quick retry covers a connection dropped by a Redis restart; more would only delay the 503.
    return Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1)


def connect(url: str, *, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=_retry(), health_check_interval=30
    )


def connect_async(url: str, *, timeout: float) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=_retry(), health_check_interval=30
    )


def as_text(value: bytes | str) -> str:
    """Redis answers bytes unless a client decodes; the conductor's keys and values are UTF-8."""
    return value.decode() if isinstance(value, bytes) else value
