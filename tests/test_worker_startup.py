"""`conductor worker` at start-up: Octopus settings that cannot work are refused naming the variable; an Octopus
or a Redis that is only down is waited for, said once, and the worker then starts. Real processes, real HTTP."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service.threaded_server import free_port, serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import CONDUCTOR_API_KEY
from tests.support.private_redis import PrivateRedis
from tests.support.stack import wait_for
from tests.test_cli import CONDUCTOR, conductor_env, run_conductor
from workers.keys import RedisKeys

EXAMPLE_RULES = Path(__file__).parent.parent / "examples" / "sample-rules.yaml"


class RunningCommand:
    """A conductor process whose stderr lines a test can watch while it runs."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen([CONDUCTOR, *args], env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def saying(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)
        self._reader.join(10)


@contextmanager
def running(env: dict[str, str], *args: str) -> Iterator[RunningCommand]:
    command = RunningCommand(env, *args)
    try:
        yield command
    finally:
        command.stop()


@pytest.fixture(scope="module")
def octopus_url() -> Iterator[str]:
    with serve_in_thread(create_simulator(seed="sample")) as url:
        yield url


def test_a_wrong_api_key_is_refused_naming_the_variable(redis_url: str, keys: RedisKeys, octopus_url: str) -> None:
    env = conductor_env(
        redis_url, keys, CONDUCTOR_OCTOPUS_URL=octopus_url, CONDUCTOR_OCTOPUS_API_KEY="API-WRONGWRONGWRONG000000"
    )

    result = run_conductor(env, "worker", "--burst")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"conductor worker: the Octopus server at {octopus_url} refused CONDUCTOR_OCTOPUS_API_KEY (HTTP 401): "
        "set it to a valid API key of the conductor's service account"
    ]
    assert "API-WRONG" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"CONDUCTOR_RULES": str(EXAMPLE_RULES)}, "CONDUCTOR_OCTOPUS_URL"),
        ({"CONDUCTOR_OCTOPUS_API_KEY": CONDUCTOR_API_KEY}, "CONDUCTOR_OCTOPUS_URL"),
        ({"CONDUCTOR_OCTOPUS_URL": "notaurl", "CONDUCTOR_OCTOPUS_API_KEY": CONDUCTOR_API_KEY}, "CONDUCTOR_OCTOPUS_URL"),
        ({"CONDUCTOR_OCTOPUS_URL": "http://127.0.0.1:1"}, "CONDUCTOR_OCTOPUS_API_KEY"),
    ],
    ids=["rules-without-octopus", "key-without-url", "not-a-url", "url-without-key"],
)
def test_octopus_settings_that_cannot_work_are_refused(
    redis_url: str, keys: RedisKeys, extra: dict[str, str], variable: str
) -> None:
    result = run_conductor(conductor_env(redis_url, keys, **extra), "worker", "--burst")

    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr


def test_a_url_that_is_not_octopus_is_refused(redis_url: str, keys: RedisKeys, octopus_url: str) -> None:
    env = conductor_env(
        redis_url, keys, CONDUCTOR_OCTOPUS_URL=f"{octopus_url}/nothing", CONDUCTOR_OCTOPUS_API_KEY=CONDUCTOR_API_KEY
    )

    result = run_conductor(env, "worker", "--burst")

    assert result.returncode == 2
    assert "set CONDUCTOR_OCTOPUS_URL to the Octopus server's base URL" in result.stderr


def test_octopus_down_at_start_is_waited_for_then_the_worker_starts(redis_url: str, keys: RedisKeys) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = conductor_env(redis_url, keys, CONDUCTOR_OCTOPUS_URL=url, CONDUCTOR_OCTOPUS_API_KEY=CONDUCTOR_API_KEY)
    with running(env, "worker", "--burst") as worker:
        wait_for("the worker to say it waits for Octopus", lambda: worker.saying("Octopus unavailable"))
        assert worker.process.poll() is None
        with serve_in_thread(create_simulator(seed="sample"), port=port):
            code = worker.finish(timeout=120)

    assert code == 0, "\n".join(worker.lines)
    assert len(worker.saying("Octopus unavailable; waiting for it")) == 1
    assert len(worker.saying("Octopus is back")) == 1
    (started,) = (json.loads(line) for line in worker.saying('"worker started"'))
    assert (started["octopus"], started["queue"]) == (url, keys.queue_name)


def test_redis_down_at_start_is_waited_for_then_the_worker_starts(tmp_path: Path, keys: RedisKeys) -> None:
    private = PrivateRedis(tmp_path)
    env = conductor_env(private.url, keys)
    try:
        with running(env, "worker", "--burst") as worker:
            wait_for("the worker to say it waits for Redis", lambda: worker.saying("Redis unreachable"))
            assert worker.process.poll() is None
            private.start()
            code = worker.finish(timeout=120)
    finally:
        private.stop()

    assert code == 0, "\n".join(worker.lines)
    assert len(worker.saying("conductor worker: Redis unreachable; waiting for it")) == 1
    assert len(worker.saying("conductor worker: Redis is back")) == 1
    (started,) = (json.loads(line) for line in worker.saying('"worker started"'))
    assert started["redis"] == private.url
    assert "only deployment outcomes are handled" in started["octopus"]
