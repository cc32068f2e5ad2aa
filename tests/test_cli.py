"""The `conductor` command as users run it: real processes, real Redis, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.threaded_server import free_port
from tests.support.webhooks import HEADER, SECRET, post
from workers.keys import RedisKeys

CONDUCTOR = str(Path(sys.executable).parent / "conductor")


def conductor_env(redis_url: str, keys: RedisKeys, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env.update(
        CONDUCTOR_REDIS_URL=redis_url,
        CONDUCTOR_REDIS_PREFIX=keys.prefix,
        CONDUCTOR_WEBHOOK_HEADER=HEADER,
        CONDUCTOR_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def run_conductor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONDUCTOR, *args], env=env, capture_output=True, text=True, timeout=60)


@contextmanager
def running_intake(env: dict[str, str], *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [CONDUCTOR, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=0.5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stderr.read() if process.stderr else ""
                    raise RuntimeError(f"intake did not start: {output}") from None
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


def log_lines(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    assert process.stderr is not None
    lines = []
    for line in process.stderr.read().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_serve_refuses_to_start_without_a_secret(redis_url: str, keys: RedisKeys) -> None:
    result = run_conductor(conductor_env(redis_url, keys), "serve")

    assert result.returncode == 2
    assert "CONDUCTOR_WEBHOOK_SECRET" in result.stderr
    assert "CONDUCTOR_ALLOW_UNAUTHENTICATED" in result.stderr


def test_serve_unauthenticated_says_so_at_start(
    redis_url: str, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    with running_intake(conductor_env(redis_url, keys), "--allow-unauthenticated") as (url, process):
        body = webhook("deployment_failed_2023")
        accepted = httpx.post(
            f"{url}/webhooks/octopus", json=body, headers={"Content-Type": "application/json"}, timeout=10
        )
    assert accepted.status_code == 202
    warnings = [line for line in log_lines(process) if line.get("level") == "warning"]
    assert any("authentication is OFF" in line["event"] for line in warnings)


def test_bad_setting_stops_start_up_naming_the_variable(redis_url: str, keys: RedisKeys) -> None:
    env = conductor_env(redis_url, keys, CONDUCTOR_MAX_BODY_BYTES="lots", CONDUCTOR_REDIS_PREFIX="has space")

    result = run_conductor(env, "status")

    assert result.returncode == 2
    assert "CONDUCTOR_MAX_BODY_BYTES" in result.stderr
    assert "CONDUCTOR_REDIS_PREFIX" in result.stderr


def test_one_log_line_per_event_and_no_secret_anywhere_in_logs(
    redis_url: str, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    env = conductor_env(redis_url, keys, CONDUCTOR_WEBHOOK_SECRET=SECRET)
    body = webhook("deployment_failed_2023")
    with running_intake(env) as (url, process):
        assert post(url, body).status_code == 202
        assert post(url, body).status_code == 200
        assert post(url, body, {HEADER: SECRET[:-1], "Content-Type": "application/json"}).status_code == 401

    lines = log_lines(process)
    events = [line for line in lines if line["event"] == "webhook event"]
    assert [(line["event_id"], line["outcome"]) for line in events] == [
        ("Events-1158436", "queued"),
        ("Events-1158436", "duplicate"),
    ]
    assert all(line["category"] == "DeploymentFailed" for line in events)
    assert any(line.get("reason") == "unauthorized" for line in lines)
    assert SECRET[:-1] not in json.dumps(lines)


def test_worker_and_status_commands(
    redis_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    env = conductor_env(redis_url, keys, CONDUCTOR_WEBHOOK_SECRET=SECRET)
    good = webhook("deployment_failed_2023")
    broken = webhook("deployment_succeeded_2016")
    broken["Payload"]["Event"]["RelatedDocumentIds"] = ["Projects-81"]
    with running_intake(env) as (url, _process):
        assert post(url, good).status_code == 202
        assert post(url, broken).status_code == 202

    before = subprocess.run([CONDUCTOR, "status"], env=env, capture_output=True, text=True, timeout=30)
    worker = subprocess.run([CONDUCTOR, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=60)
    after = subprocess.run([CONDUCTOR, "status", "--json"], env=env, capture_output=True, text=True, timeout=30)

    assert before.returncode == 0, before.stderr
    assert f"queue {keys.queue_name}: 2 waiting, 0 running, 0 failed" in before.stdout
    assert "Events-1158436" in before.stdout
    assert worker.returncode == 0, worker.stderr
    status = json.loads(after.stdout)
    assert status["queued"] == 0
    assert [job["job_id"] for job in status["failed"]] == [keys.job_id("Events-6930")]
    assert "names no Deployments- document" in status["failed"][0]["reason"]
    assert {event["id"] for event in status["recent_events"]} == {"Events-1158436", "Events-6930"}
    assert connection.hget(keys.deployment_outcome("Deployments-12519"), "result") == b"Failed"


@pytest.mark.parametrize(
    "command",
    ["serve", "worker", "status", "simulator", "reconcile", "replay", "check-rules", "scheduler", "promote", "report"],
)
def test_help_texts(command: str) -> None:
    result = run_conductor(dict(os.environ), command, "--help")
    assert result.returncode == 0
    assert "usage: conductor" in result.stdout


REDIS_PASSWORD = "hunter2-pass"


def closed_redis_url() -> str:
    """A Redis URL with a password, on a port nothing listens on."""
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize("command", [["status"], ["replay", "--all-failed"], ["replay", "Events-1"]])
def test_one_shot_commands_with_redis_unreachable_say_one_line_without_the_password(
    keys: RedisKeys, command: list[str]
) -> None:
    url = closed_redis_url()

    result = run_conductor(conductor_env(url, keys), *command)

    masked = url.replace(REDIS_PASSWORD, "***")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"conductor {command[0]}: cannot reach Redis at {masked} (Connection refused): start Redis there, "
        "or set CONDUCTOR_REDIS_URL to the Redis the conductor uses"
    ]
    assert REDIS_PASSWORD not in result.stdout + result.stderr


def test_reconcile_with_redis_unreachable_says_so_once_and_waits(keys: RedisKeys) -> None:
    url = closed_redis_url()
    env = conductor_env(url, keys, CONDUCTOR_OCTOPUS_URL="http://127.0.0.1:1", CONDUCTOR_OCTOPUS_API_KEY="API-X")
    process = subprocess.Popen([CONDUCTOR, "reconcile"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert process.poll() is None  # waiting, not exited
    finally:
        process.terminate()
        process.wait(15)
    line = json.loads(first)
    assert line["event"] == "conductor reconcile: Redis unreachable; waiting for it"
    assert line["redis"] == url.replace(REDIS_PASSWORD, "***")
    assert line["fix"] == "start Redis there, or set CONDUCTOR_REDIS_URL to the Redis the conductor uses"


@pytest.mark.parametrize("url", ["garbage", "redis://redis:notaport/0"])
def test_demo_with_a_bad_redis_url_names_the_variable(url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env["CONDUCTOR_REDIS_URL"] = url

    result = run_conductor(env, "demo")

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("conductor demo: CONDUCTOR_REDIS_URL ")
    assert "Traceback" not in result.stdout + result.stderr


def test_demo_shows_the_redis_url_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from demo.narration import Narrator
    from demo.stage import choose_redis

    url = closed_redis_url()
    monkeypatch.setenv("CONDUCTOR_REDIS_URL", url)
    out = io.StringIO()

    assert choose_redis(Narrator(out)) is None

    assert f"CONDUCTOR_REDIS_URL={url.replace(REDIS_PASSWORD, '***')} cannot be reached" in out.getvalue()
    assert REDIS_PASSWORD not in out.getvalue()


def test_version_is_the_distributions() -> None:
    from importlib.metadata import version

    result = run_conductor(dict(os.environ), "--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"conductor {version('release-conductor')}"


def test_log_level_in_any_case(redis_url: str, keys: RedisKeys) -> None:
    result = run_conductor(conductor_env(redis_url, keys, CONDUCTOR_LOG_LEVEL="warning"), "status")

    assert result.returncode == 0, result.stderr


def test_serve_names_the_address_it_listens_on(redis_url: str, keys: RedisKeys) -> None:
    with running_intake(conductor_env(redis_url, keys, CONDUCTOR_WEBHOOK_SECRET=SECRET)) as (url, process):
        pass

    (listening,) = [line for line in log_lines(process) if line["event"] == "intake listening"]
    assert listening["address"] == url
