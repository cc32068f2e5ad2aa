"""Redis SIGKILLed and restarted (AOF) under load, with real `conductor worker` processes: no worker exits,
and every event the intake acknowledged is processed."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from functools import partial
from pathlib import Path

import pytest
import redis
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from service.app import create_app
from service.threaded_server import serve_in_thread
from tests.conftest import make_settings
from tests.support.private_redis import PrivateRedis
from tests.support.stack import CONDUCTOR, conductor_env, stop_processes, wait_for
from tests.support.webhooks import load_webhook, post
from workers.keys import RedisKeys

pytestmark = pytest.mark.faults
OUTAGE_SECONDS = 3.0


def deployment_succeeded(number: int) -> dict[str, object]:
    body = load_webhook("deployment_succeeded_tenanted")
    body["Payload"]["Event"]["Id"] = f"Events-{number}"
    body["Payload"]["Event"]["RelatedDocumentIds"] = [f"Deployments-{number}"]
    return body


def kill(private: PrivateRedis) -> None:
    assert private.process is not None
    private.process.send_signal(signal.SIGKILL)  # no chance to flush anything on the way down
    private.process.wait(10)
    private.process = None


def test_workers_outlast_redis_killed_and_restarted_under_load(tmp_path: Path, keys: RedisKeys) -> None:
    private = PrivateRedis(tmp_path, appendonly=True)
    private.start()
    env = conductor_env(private.url, keys)
    log_path = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker() -> None:
        with log_path.open("ab") as log:
            workers.append(subprocess.Popen([CONDUCTOR, "worker"], env=env, stderr=log, start_new_session=True))

    acknowledged: list[str] = []
    answers: list[int] = []
    stop = threading.Event()
    try:
        with serve_in_thread(create_app(make_settings(private.url, keys))) as url:

            def deliver() -> None:  # about 150 events a second
                number = 20_000
                while not stop.is_set():
                    number += 1
                    status = post(url, deployment_succeeded(number)).status_code
                    answers.append(status)
                    if status == 202:
                        acknowledged.append(keys.job_id(f"Events-{number}"))
                    time.sleep(1 / 150)

            for _ in range(2):
                start_worker()
            sender = threading.Thread(target=deliver)
            sender.start()
            for wanted in (300, 600):
                wait_for(f"{wanted} events", partial(more_than, acknowledged, wanted), timeout=60)
                kill(private)
                start_worker()  # a worker starting while Redis is down waits for it
                time.sleep(OUTAGE_SECONDS)
                private.start()
            wait_for("more events after the restart", lambda: len(acknowledged) > 900, timeout=60)
            stop.set()
            sender.join(30)

            connection = redis.Redis.from_url(private.url)

            def unfinished() -> list[str]:
                return [job_id for job_id in acknowledged if status_of(connection, job_id) != JobStatus.FINISHED]

            try:
                wait_for("every acknowledged event processed", lambda: not unfinished(), timeout=120, interval=1)
            except AssertionError:
                left = unfinished()
                raise AssertionError(
                    f"{len(left)} not processed, e.g. {[(j, status_of(connection, j)) for j in left[:5]]}\n"
                    + not_job_lines(log_path.read_text())
                ) from None
            exited = [worker.returncode for worker in workers if worker.poll() is not None]
    finally:
        stop.set()
        stop_processes(workers, grace_seconds=20)
        private.stop()

    log = log_path.read_text()
    assert exited == [], not_job_lines(log)
    assert 503 in answers  # the outage did reach the intake
    assert "unhandled exception" not in log
    assert "Redis unreachable; waiting for it" in log
    assert "Redis is back" in log


def not_job_lines(log: str) -> str:
    """The worker log without its one line per job done: what a failure needs to show."""
    return "\n".join(line for line in log.splitlines() if '"job done"' not in line)[-6000:]


def more_than(items: list[str], count: int) -> bool:
    return len(items) > count


def status_of(connection: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer).get_status()
    except Exception:  # gone, or Redis restarting
        return None
