"""Waiting for Redis: long-running commands (worker, reconciler, scheduler) wait for it, saying so once.

One-shot commands (`status`, `replay`) do not wait: they print `unreachable_message` and exit.
A refused password is not an outage, so `wait_for_redis` raises it (`redis.AuthenticationError`) at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
import redis.sentinel

from workers.redis_url import MASK

# What a Redis that is down, restarting or out of reach raises.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)

FIX = "start Redis there, or set CONDUCTOR_REDIS_URL to the Redis the conductor uses"
FIRST_DELAY = 0.5
MAX_DELAY = 15.0


def wait_for_redis(
    connection: redis.Redis,
    *,
    what: str,
    log: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once `connection` answers PING: at once when it does, else after capped exponential backoff.

    Logs one warning when the wait starts and one line when Redis is back, whatever the wait's length."""
    delay = FIRST_DELAY
    waited = 0.0
    while True:
        try:
            connection.ping()
        except redis.AuthenticationError:
            raise
        except UNREACHABLE as error:
            if waited == 0.0:
                log.warning(
                    f"{what}: Redis unreachable; waiting for it",
                    redis=redis_location(connection),
                    error=reason(error),
                    fix=FIX,
                )
            sleep(delay)
            waited += delay
            delay = min(delay * 2, MAX_DELAY)
            continue
        if waited:
            log.info(f"{what}: Redis is back", redis=redis_location(connection), waited_seconds=round(waited, 1))
        return


def unreachable_message(location: str, error: BaseException) -> str:
    """The one line a command prints when Redis cannot be reached. `location` must carry no password."""
    if isinstance(error, redis.AuthenticationError):
        return f"Redis at {location} refused the credentials ({reason(error)}): fix the password in CONDUCTOR_REDIS_URL"
    return f"cannot reach Redis at {location} ({reason(error)}): {FIX}"


def reason(error: BaseException) -> str:
    """A short cause without a traceback, e.g. "Connection refused"."""
    text = str(error).strip().rstrip(".")
    # redis-py says "Error 111 connecting to 127.0.0.1:1. Connection refused."; keep the cause.
    if text.startswith("Error ") and ". " in text:
        text = text.rsplit(". ", 1)[1]
    return text or type(error).__name__


def redis_location(connection: redis.Redis) -> str:
    """Where `connection` points, as a URL with the password masked."""
    pool = connection.connection_pool
    if isinstance(pool, redis.sentinel.SentinelConnectionPool):  # the primary's address changes: name the Sentinels
        sentinels = ",".join(
            f"{client.connection_pool.connection_kwargs.get('host')}:{client.connection_pool.connection_kwargs.get('port')}"
            for client in pool.sentinel_manager.sentinels
        )
        return f"redis+sentinel://{sentinels}/{pool.service_name}/{pool.connection_kwargs.get('db', 0)}"
    kwargs = pool.connection_kwargs
    auth = f"{kwargs.get('username') or ''}:{MASK}@" if kwargs.get("password") else ""
    if "path" in kwargs:
        return f"unix://{auth}{kwargs['path']}?db={kwargs.get('db', 0)}"
    if "host" not in kwargs:
        return "memory://"
    scheme = "rediss" if issubclass(connection.connection_pool.connection_class, redis.SSLConnection) else "redis"
    return f"{scheme}://{auth}{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
