"""Redis URLs: which ones the conductor accepts, and what a Sentinel URL names."""

from __future__ import annotations

import pytest
import redis.sentinel

from workers.redis_client import SentinelAddress, connect, parse_sentinel_url, url_problem


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db() -> None:
    address = parse_sentinel_url("redis+sentinel://s1:26379,s2:26380,s3/mymaster/2")

    assert address == SentinelAddress(sentinels=(("s1", 26379), ("s2", 26380), ("s3", 26379)), service="mymaster", db=2)


def test_the_password_form_gives_the_primary_its_password_and_sentinels_theirs() -> None:
    address = parse_sentinel_url("redis+sentinel://:pa%3Ass@s1:26379/mymaster?sentinel_password=other")

    assert (address.username, address.password, address.sentinel_password, address.db) == (None, "pa:ss", "other", 0)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel:///mymaster/0", "names no Sentinel"),
        ("redis+sentinel://s1:26379", "must name the Sentinel service"),
        ("redis+sentinel://s1:26379/mymaster/zero", "db after the service name must be a number"),
        ("redis+sentinel://s1:port/mymaster", "each Sentinel must be host:port"),
        ("redis+sentinel://s1/mymaster?password=x", "unknown option(s) password"),
        ("http://redis:6379/0", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL"),
    ],
)
def test_a_bad_url_is_refused_with_what_is_wrong_and_without_repeating_it(url: str, problem: str) -> None:
    found = url_problem(url)

    assert found is not None
    assert problem in found
    assert url not in found  # a URL may hold a password: it is never repeated


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://:secret@redis:6380/1", "unix:///tmp/redis.sock", "redis+sentinel://s1/m"],
)
def test_the_urls_the_readme_names_are_accepted(url: str) -> None:
    assert url_problem(url) is None


def test_a_sentinel_url_connects_through_redis_pys_sentinel() -> None:
    connection = connect("redis+sentinel://:secret@127.0.0.1:1/mymaster/3", timeout=0.2)

    pool = connection.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert (pool.service_name, pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (
        "mymaster",
        3,
        "secret",
    )
