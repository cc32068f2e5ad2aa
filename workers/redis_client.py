"""Redis connections with timeouts short enough that a dead Redis is an error, not a hang.

Every connection the conductor makes (the intake, the workers and RQ's scheduler, the reconciler, the
commands) comes from `connect` or `connect_async`, so each of them speaks to the same kinds of Redis:

- `redis://`, `rediss://`, `unix://`: one Redis server, as redis-py reads the URL;
- `redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]`: the
  primary of `service` as the Sentinels name it, through redis-py's `Sentinel`; after a failover the next
  connection goes to the new primary. The password is the primary's; Sentinels that need one of their own
  get `sentinel_password`.

`memory://` names the in-process stand-in the demo runs on where no Redis is reachable: every client
made for it in one process shares one fakeredis server. It keeps nothing and is never shared between
processes, so only `conductor demo`, which runs every part in one process, may use it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    import fakeredis

MEMORY_URL = "memory://"
SENTINEL_SCHEME = "redis+sentinel"
SERVER_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
HEALTH_CHECK_SECONDS = 30


def _retry() -> Retry:
    # One quick retry covers a connection dropped by a Redis restart; more would only delay the 503.
    return Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1)


@dataclass(frozen=True)
class SentinelAddress:
    """What a `redis+sentinel://` URL names: the Sentinels, the service they watch, and the primary's db."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Read a `redis+sentinel://` URL; ValueError names what is wrong without repeating the URL."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        name, _, secret = userinfo.partition(":")
        username, password = unquote(name) or None, unquote(secret) or None
    sentinels = tuple(_host_port(item) for item in hosts.split(",") if item)
    if not sentinels:
        raise ValueError("names no Sentinel: give host:port[,host:port...] after the scheme")
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2:
        raise ValueError("must name the Sentinel service and optionally the db: .../mymaster/0")
    try:
        db = int(path[1]) if len(path) == 2 else 0
    except ValueError:
        raise ValueError("the db after the service name must be a number") from None
    query = parse_qs(parts.query)
    unknown = set(query) - {"sentinel_password"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; only sentinel_password is read")
    sentinel_password = query.get("sentinel_password", [None])[-1]
    return SentinelAddress(sentinels, unquote(path[0]), db, username, password, sentinel_password)


def url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, or None. Never repeats the URL (it may hold a password)."""
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except ValueError as error:
            return f"is not a usable Sentinel URL: {error}"
        return None
    if not url.startswith(tuple(f"{scheme}://" for scheme in SERVER_SCHEMES)):
        return (
            "must be a redis://, rediss://, unix:// or redis+sentinel:// URL, e.g. redis://:password@redis:6379/0 "
            "or redis+sentinel://s1:26379,s2:26379/mymaster/0"
        )
    try:
        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as error:
        return f"is not a usable Redis URL: {str(error).rstrip('.')}"
    return None


def _host_port(item: str) -> tuple[str, int]:
    host, colon, port = item.rpartition(":")
    if not colon:
        return item, DEFAULT_SENTINEL_PORT
    if not port.isdigit() or not host:
        raise ValueError("each Sentinel must be host:port")
    return host.strip("[]"), int(port)


def _options(timeout: float) -> dict[str, Any]:
    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": _retry(),
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }


def _sentinel_options(address: SentinelAddress, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if address.sentinel_password is not None:
        options["password"] = address.sentinel_password
    return options


def _primary_options(address: SentinelAddress, timeout: float) -> dict[str, Any]:
    return {**_options(timeout), "db": address.db, "username": address.username, "password": address.password}


@functools.cache
def _memory_server() -> fakeredis.FakeServer:
    import fakeredis  # costs a quarter of a second; only the demo needs it

    return fakeredis.FakeServer()


def connect(url: str, *, timeout: float) -> redis.Redis:
    if url.startswith(MEMORY_URL):
        import fakeredis

        return fakeredis.FakeRedis(server=_memory_server())
    if is_sentinel_url(url):
        address = parse_sentinel_url(url)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(address.sentinels), sentinel_kwargs=_sentinel_options(address, timeout)
        )
        primary = sentinel.master_for(address.service, **_primary_options(address, timeout))  # type: ignore[no-untyped-call]
        return cast(redis.Redis, primary)
    return redis.Redis.from_url(url, **_options(timeout))


def connect_async(url: str, *, timeout: float) -> redis.asyncio.Redis:
    if url.startswith(MEMORY_URL):
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=_memory_server())
    if is_sentinel_url(url):
        address = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(address.sentinels), sentinel_kwargs=_sentinel_options(address, timeout)
        )
        return cast(redis.asyncio.Redis, sentinel.master_for(address.service, **_primary_options(address, timeout)))
    return redis.asyncio.Redis.from_url(url, **_options(timeout))


def as_text(value: bytes | str) -> str:
    """Redis answers bytes unless a client decodes; the conductor's keys and values are UTF-8."""
    return value.decode() if isinstance(value, bytes) else value
