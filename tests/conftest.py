from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from service.app import create_app
from service.settings import Settings
from service.threaded_server import serve_in_thread
from tests.support.redis_space import redis_space, test_redis_url
from tests.support.tokens import OLD_READ_TOKEN, READ_TOKEN
from tests.support.webhooks import HEADER, OLD_SECRET, SECRET, load_webhook
from workers.keys import RedisKeys


@pytest.fixture
def redis_url() -> str:
    return test_redis_url()


@pytest.fixture
def space(redis_url: str) -> Iterator[tuple[redis.Redis, RedisKeys]]:
    with redis_space(redis_url) as pair:
        yield pair


@pytest.fixture
def connection(space: tuple[redis.Redis, RedisKeys]) -> redis.Redis:
    return space[0]


@pytest.fixture
def keys(space: tuple[redis.Redis, RedisKeys]) -> RedisKeys:
    return space[1]


@pytest.fixture
def webhook() -> Callable[[str], dict[str, Any]]:
    return load_webhook


def make_settings(redis_url: str, keys: RedisKeys, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_prefix": keys.prefix,
        "webhook_header": HEADER,
        "webhook_secret": f"{SECRET},{OLD_SECRET}",
        "job_retry_intervals": "1,1",
        "read_tokens": f"{READ_TOKEN},{OLD_READ_TOKEN}",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(redis_url: str, keys: RedisKeys) -> Settings:
    return make_settings(redis_url, keys)


@pytest.fixture
def intake_url(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url
