"""Redis high availability with real processes: a primary, a replica and three Sentinels. The primary is
killed under load (and comes back, as a restarted pod does, to be the new primary's replica). With
replica acks on, every event the intake acknowledged is processed, once."""

from __future__ import annotations

import collections
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from service.app import create_app
from service.threaded_server import serve_in_thread
from tests.conftest import make_settings
from tests.support.sentinel_redis import SentinelRedis
from tests.support.stack import CONDUCTOR, conductor_env, stop_processes, wait_for
from tests.support.webhooks import load_webhook, post
from workers.keys import RedisKeys
from workers.redis_client import connect

pytestmark = pytest.mark.faults


def deployment_succeeded(number: int) -> dict[str, object]:
    body = load_webhook("deployment_succeeded_tenanted")
    body["Payload"]["Event"]["Id"] = f"Events-{number}"
    body["Payload"]["Event"]["RelatedDocumentIds"] = [f"Deployments-{number}"]
    return body


def test_after_a_failover_every_event_acknowledged_with_replica_acks_is_processed_once(
    tmp_path: Path, keys: RedisKeys
) -> None:
    redis_set = SentinelRedis(tmp_path)
    redis_set.start()
    env = conductor_env(redis_set.url, keys)
    log_path = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    acknowledged: list[str] = []
    refused_at: list[float] = []
    stop = threading.Event()
    try:
        settings = make_settings(redis_set.url, keys, redis_replica_acks=1)
        with serve_in_thread(create_app(settings)) as url:
            for _ in range(2):
                with log_path.open("ab") as log:
                    workers.append(subprocess.Popen([CONDUCTOR, "worker"], env=env, stderr=log, start_new_session=True))

            def deliver() -> None:  # about 100 events a second
                number = 40_000
                while not stop.is_set():
                    number += 1
                    status = post(url, deployment_succeeded(number)).status_code
                    if status == 202:
                        acknowledged.append(f"Events-{number}")
                    elif status == 503:
                        refused_at.append(time.monotonic())
                    time.sleep(1 / 100)

            sender = threading.Thread(target=deliver)
            sender.start()
            wait_for("300 acknowledged events", lambda: len(acknowledged) > 300, timeout=60)
            old_primary = redis_set.primary()
            redis_set.kill(old_primary)
            killed_at = time.monotonic()
            wait_for("the Sentinels to promote the replica", lambda: redis_set.primary() != old_primary, timeout=60)
            redis_set.start_server(old_primary)  # the restarted pod; the Sentinels make it a replica
            before = len(acknowledged)
            wait_for("acknowledgements again", lambda: len(acknowledged) > before + 300, timeout=90)
            stop.set()
            sender.join(30)

            connection = connect(redis_set.url, timeout=2.0)

            def unfinished() -> list[str]:
                return [event for event in acknowledged if status_of(connection, keys.job_id(event)) != "finished"]

            wait_for("every acknowledged event processed", lambda: not unfinished(), timeout=180, interval=1)
            exited = [worker.returncode for worker in workers if worker.poll() is not None]
    finally:
        stop.set()
        stop_processes(workers, grace_seconds=20)
        redis_set.stop()

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    runs = collections.Counter(line["event_id"] for line in lines if line.get("event") == "job done")
    window = (refused_at[-1] - killed_at) if refused_at else 0.0
    print(f"\nintake answered 503 for {window:.1f} s after the primary was killed ({len(refused_at)} refusals)")
    assert exited == []
    assert refused_at  # the failover did reach the intake
    assert all(runs[event] == 1 for event in acknowledged), [e for e in acknowledged if runs[e] != 1][:10]


def status_of(connection: redis.Redis, job_id: str) -> str | None:
    try:
        return str(Job.fetch(job_id, connection=connection, serializer=JSONSerializer).get_status().value)
    except Exception:  # gone, or Redis failing over
        return None
