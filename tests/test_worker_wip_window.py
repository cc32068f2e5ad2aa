"""A worker killed while taking a job, in each window a crash can hit: another worker runs the job again
within the promised two minutes. Real processes: the dying workers and a `conductor worker`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import make_settings
from tests.support.stack import CONDUCTOR
from tests.support.webhooks import load_webhook
from workers.event_queue import Submission
from workers.events import QueuedEvent, WebhookEnvelope, utcnow
from workers.keys import RedisKeys
from workers.redis_client import as_text

pytestmark = pytest.mark.faults
# Well past the ~95 s the slower window takes with the default job timeout, and short of the 158-160 s
# the wip window took before the worker marked a job started as it entered the wip registry.
DEADLINE_SECONDS = 150


def submission(number: int) -> Submission:
    body = load_webhook("deployment_succeeded_tenanted")
    body["Payload"]["Event"]["Id"] = f"Events-{number}"
    body["Payload"]["Event"]["RelatedDocumentIds"] = [f"Deployments-{number}"]
    envelope = WebhookEnvelope.model_validate(body)
    return Submission(QueuedEvent.from_webhook(envelope, received_at=utcnow()), True)


def test_a_job_abandoned_in_either_window_runs_again_within_two_minutes(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    settings = make_settings(redis_url, keys)
    connection = redis.Redis.from_url(redis_url)
    queue = settings.event_queue(connection)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env.update(
        CONDUCTOR_REDIS_URL=redis_url,
        CONDUCTOR_REDIS_PREFIX=keys.prefix,
        CONDUCTOR_JOB_RETRY_INTERVALS="1,1",
        CONDUCTOR_LOG_FORMAT="json",
    )
    log_path = tmp_path / "workers.log"
    killed_at: dict[str, float] = {}
    job_ids: dict[str, str] = {}
    for number, point in enumerate(["popped", "in-wip"], start=9100):
        with log_path.open("ab") as log:
            dying = subprocess.Popen(
                [sys.executable, "-m", "tests.support.dying_worker", point], env=env, stderr=log, start_new_session=True
            )
        (stored,) = queue.store([submission(number)])
        assert stored.job_id is not None
        job_ids[point] = stored.job_id
        assert dying.wait(30) == -9
        killed_at[point] = time.monotonic()

    started = StartedJobRegistry(keys.queue_name, connection=connection)
    intermediate = [as_text(item) for item in connection.lrange(queue.queue.intermediate_queue_key, 0, -1)]
    # What RQ's cleaning acts on: a popped job in the intermediate queue, a job in the wip registry marked started.
    assert intermediate == [job_ids["popped"]]
    assert job_ids["in-wip"] in started
    assert fetch(connection, job_ids["in-wip"]).get_status() == JobStatus.STARTED

    with log_path.open("ab") as log:
        survivor = subprocess.Popen([CONDUCTOR, "worker"], env=env, stderr=log, start_new_session=True)
    finished_after: dict[str, float] = {}
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(finished_after) < len(job_ids) and time.monotonic() < deadline:
            for point, job_id in job_ids.items():
                if point not in finished_after and fetch(connection, job_id).get_status() == JobStatus.FINISHED:
                    finished_after[point] = time.monotonic() - killed_at[point]
            time.sleep(0.5)
    finally:
        survivor.terminate()
        survivor.wait(30)

    print(
        "\n"
        + ", ".join(f"{point}: ran again {seconds:.0f} s after the kill" for point, seconds in finished_after.items())
    )
    assert set(finished_after) == set(job_ids), log_path.read_text()[-4000:]


def fetch(connection: redis.Redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
