"""A worker consuming what the intake queued: dispatch, recorded outcomes, retries and failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests.support.webhooks import AUTH
from workers import dispatch
from workers.errors import TransientError
from workers.event_queue import EventQueue, JobPolicy, Submission
from workers.events import OctopusEvent, QueuedEvent, WebhookEnvelope, utcnow
from workers.keys import RedisKeys, delete_all
from workers.outcomes import read_deployment_outcome
from workers.runner import build_worker
from workers.runtime import WorkerContext


def run_burst(connection: redis.Redis, keys: RedisKeys) -> None:
    worker = build_worker(connection=connection, keys=keys)
    worker.work(burst=True, logging_level="WARNING")


def enqueue(connection: redis.Redis, keys: RedisKeys, body: dict[str, Any]) -> str:
    queue = EventQueue(
        connection=connection, keys=keys, policy=JobPolicy(retry_intervals=(1, 1)), dedupe_window_seconds=600
    )
    queued = QueuedEvent.from_webhook(WebhookEnvelope.model_validate(body), received_at=utcnow())
    (result,) = queue.store([Submission(event=queued, handled=True)])
    assert result.outcome == "queued"
    assert result.job_id is not None
    return result.job_id


def test_worker_records_the_outcome_of_a_webhook_event_end_to_end(
    intake_url: str, connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = webhook("deployment_succeeded_tenanted")
    response = httpx.post(f"{intake_url}/webhooks/octopus", content=json.dumps(body), headers=AUTH)
    assert response.status_code == 202

    run_burst(connection, keys)

    job = Job.fetch(response.json()["job_id"], connection=connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED
    context = WorkerContext(redis=connection, keys=keys)
    assert read_deployment_outcome(context, "Deployments-310") == {
        "deployment": "Deployments-310",
        "project": "Projects-4",
        "release": "Releases-77",
        "environment": "Environments-3",
        "tenant": "Tenants-2",
        "task": "ServerTasks-2150",
        "space": "Spaces-1",
        "result": "Success",
        "occurred": "2025-03-04T11:02:20.871000+00:00",
        "event": "Events-90511",
    }
    assert connection.zscore(keys.deployment_outcomes, "Deployments-310") is not None


def test_failed_deployment_outcome_is_recorded_as_failed(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    enqueue(connection, keys, webhook("deployment_failed_2023"))

    run_burst(connection, keys)

    outcome = read_deployment_outcome(WorkerContext(redis=connection, keys=keys), "Deployments-12519")
    assert outcome is not None
    assert outcome["result"] == "Failed"
    assert outcome["tenant"] == ""


def test_permanent_error_goes_to_failed_registry_at_once_with_its_reason(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    body = webhook("deployment_failed_2023")
    body["Payload"]["Event"]["RelatedDocumentIds"] = ["Projects-4522", "Environments-1621"]
    job_id = enqueue(connection, keys, body)

    run_burst(connection, keys)

    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    assert FailedJobRegistry(queue=queue).get_job_ids() == [job_id]
    assert ScheduledJobRegistry(queue=queue).count == 0
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert "names no Deployments- document" in (job.exc_info or "")


def test_transient_error_is_retried_with_backoff(
    connection: redis.Redis,
    keys: RedisKeys,
    webhook: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def flaky(event: OctopusEvent, context: WorkerContext) -> dict[str, Any]:
        raise TransientError("Octopus answered 503")

    monkeypatch.setattr(dispatch, "HANDLERS", {"DeploymentFailed": flaky})
    job_id = enqueue(connection, keys, webhook("deployment_failed_2023"))

    run_burst(connection, keys)

    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == 1
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [job_id]
    assert FailedJobRegistry(queue=queue).count == 0


def test_event_of_a_category_without_handler_fails_permanently(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    job_id = enqueue(connection, keys, webhook("document_created_2020"))

    run_burst(connection, keys)

    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FAILED
    assert "no handler is registered for event category 'Created'" in (job.exc_info or "")


def test_follow_up_jobs_never_run_before_their_time(connection: redis.Redis, keys: RedisKeys) -> None:
    from datetime import UTC, datetime, timedelta

    from rq.registry import ScheduledJobRegistry

    from workers.scheduling import JobScheduler, not_before

    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    asked = datetime.now(UTC) + timedelta(seconds=2)
    JobScheduler(queue, JobPolicy(retry_intervals=()), keys).soon("workers.jobs.advance_plan", "plan-1", delay=2)

    (job_id,) = ScheduledJobRegistry(queue=queue).get_job_ids()
    scheduled = ScheduledJobRegistry(queue=queue).get_scheduled_time(job_id)
    # RQ keeps whole seconds: truncating would make this earlier than asked (but for a 1-in-a-million tie).
    assert scheduled.replace(tzinfo=UTC).timestamp() >= asked.timestamp()
    assert not_before(datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC)
    assert not_before(datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)) == datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)


def test_follow_up_jobs_live_under_the_prefix_and_are_removed_with_it(connection: redis.Redis, keys: RedisKeys) -> None:
    from workers.scheduling import JobScheduler

    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    scheduler = JobScheduler(queue, JobPolicy(retry_intervals=()), keys)
    scheduler.soon("workers.jobs.advance_plan", "plan-1")
    scheduler.soon("workers.jobs.advance_plan", "plan-2", delay=60)
    job_ids = [*queue.get_job_ids(), *ScheduledJobRegistry(queue=queue).get_job_ids()]

    assert len(job_ids) == 2
    assert all(job_id.startswith(f"{keys.prefix}-follow-up-") for job_id in job_ids)
    delete_all(connection, keys)
    assert not any(connection.exists(f"rq:job:{job_id}") for job_id in job_ids)
