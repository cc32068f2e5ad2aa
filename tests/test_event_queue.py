"""The store path writes exactly what RQ's own enqueue writes, and still deduplicates atomically.

`EventQueue` no longer builds an RQ `Job` per event: it replays a template learnt from RQ. These tests hold
it to RQ's format, so that an RQ upgrade that changes how a job is written fails here.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import utcparse

from workers.event_queue import JOB_FUNCTION, EventQueue, JobPolicy, RQFormatChanged, Submission
from workers.events import QueuedEvent, WebhookEnvelope, utcnow
from workers.keys import RedisKeys
from workers.runner import build_worker

TIMESTAMP_FIELDS = {b"created_at", b"enqueued_at"}

POLICIES = [
    pytest.param(JobPolicy(), id="default-policy"),
    pytest.param(JobPolicy(retry_intervals=()), id="no-retries"),
    pytest.param(
        JobPolicy(timeout_seconds=7, retry_intervals=(1, 2), result_ttl_seconds=60, failure_ttl_seconds=120),
        id="custom-policy",
    ),
]


def queued_event(webhook: Callable[[str], dict[str, Any]], name: str, event_id: str | None = None) -> QueuedEvent:
    body = webhook(name)
    if event_id is not None:
        body["Payload"]["Event"]["Id"] = event_id
    return QueuedEvent.from_webhook(WebhookEnvelope.model_validate(body), received_at=utcnow())


def make_queue(connection: redis.Redis, keys: RedisKeys, policy: JobPolicy | None = None) -> EventQueue:
    return EventQueue(connection=connection, keys=keys, policy=policy or JobPolicy(), dedupe_window_seconds=600)


def rq_state(connection: redis.Redis, keys: RedisKeys, job_id: str) -> tuple[dict[Any, Any], list[Any], bool]:
    """A job's hash, the queue's list and whether rq:queues lists the queue."""
    queue_key = f"rq:queue:{keys.queue_name}"
    return (
        connection.hgetall(f"rq:job:{job_id}"),
        connection.lrange(queue_key, 0, -1),
        bool(connection.sismember("rq:queues", queue_key)),
    )


def forget(connection: redis.Redis, keys: RedisKeys, job_id: str) -> None:
    queue_key = f"rq:queue:{keys.queue_name}"
    connection.delete(f"rq:job:{job_id}", queue_key, keys.dedupe(job_id.removeprefix(f"{keys.prefix}-")))
    connection.srem("rq:queues", queue_key)
    assert rq_state(connection, keys, job_id) == ({}, [], False)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("fixture", ["deployment_succeeded_tenanted", "manual_intervention_raised"])
def test_stored_job_is_what_rqs_own_enqueue_many_writes(
    connection: redis.Redis,
    keys: RedisKeys,
    webhook: Callable[[str], dict[str, Any]],
    policy: JobPolicy,
    fixture: str,
) -> None:
    event = queued_event(webhook, fixture)
    job_id = keys.job_id(event.event.Id)

    (result,) = make_queue(connection, keys, policy).store([Submission(event, True)])
    assert result.outcome == "queued"
    ours = rq_state(connection, keys, job_id)
    forget(connection, keys, job_id)

    # RQ's own enqueue of the same event, executed for real.
    rq_queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    retry = (
        Retry(max=len(policy.retry_intervals), interval=list(policy.retry_intervals))
        if policy.retry_intervals
        else None
    )
    rq_queue.enqueue_many(
        [
            Queue.prepare_data(
                JOB_FUNCTION,
                args=(event.job_argument(),),
                job_id=job_id,
                timeout=policy.timeout_seconds,
                result_ttl=policy.result_ttl_seconds,
                failure_ttl=policy.failure_ttl_seconds,
                retry=retry,
                description=f"{event.event.Category} {event.event.Id}",
            )
        ]
    )
    theirs = rq_state(connection, keys, job_id)

    our_hash, our_list, our_listed = ours
    their_hash, their_list, their_listed = theirs
    # Field by field, the same set of fields; only the timestamps may differ (and must be RQ's format).
    assert sorted(our_hash) == sorted(their_hash)
    for name in TIMESTAMP_FIELDS:
        assert name in our_hash
        utcparse(our_hash[name].decode())
    for name in sorted(set(their_hash) - TIMESTAMP_FIELDS - {b"data"}):
        assert our_hash[name] == their_hash[name], name
    # `data`: plain compact JSON where RQ compresses, the same call once read.
    their_call = json.loads(zlib.decompress(their_hash[b"data"]))
    assert json.loads(our_hash[b"data"]) == their_call == [JOB_FUNCTION, None, [event.job_argument()], {}]
    assert our_list == their_list == [job_id.encode()]
    assert our_listed
    assert their_listed
    assert connection.ttl(f"rq:job:{job_id}") == -1  # RQ sets no expiry on a queued job; neither do we

    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert job.func_name == JOB_FUNCTION
    assert job.args == [event.job_argument()]


def test_job_stored_by_the_template_is_run_by_a_worker(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    event = queued_event(webhook, "deployment_succeeded_tenanted")
    (result,) = make_queue(connection, keys).store([Submission(event, True)])
    assert result.job_id is not None

    build_worker(connection=connection, keys=keys).work(burst=True, logging_level="WARNING")

    job = Job.fetch(result.job_id, connection=connection, serializer=JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED
    assert connection.hexists(keys.deployment_outcome("Deployments-310"), "result")


def test_duplicates_in_one_batch_and_across_batches(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    queue = make_queue(connection, keys)
    first = queued_event(webhook, "deployment_succeeded_tenanted", "Events-501")
    second = queued_event(webhook, "deployment_failed_2023", "Events-502")

    results = queue.store([Submission(first, True), Submission(first, True), Submission(second, True)])
    assert [r.outcome for r in results] == ["queued", "duplicate", "queued"]
    assert [r.job_id for r in results] == [keys.job_id("Events-501")] * 2 + [keys.job_id("Events-502")]

    again = queue.store([Submission(second, True), Submission(first, True)])
    assert [r.outcome for r in again] == ["duplicate", "duplicate"]
    # A fresh EventQueue (its own template) still sees them as duplicates.
    assert [r.outcome for r in make_queue(connection, keys).store([Submission(first, True)])] == ["duplicate"]

    queue_key = f"rq:queue:{keys.queue_name}"
    assert connection.lrange(queue_key, 0, -1) == [
        keys.job_id("Events-501").encode(),
        keys.job_id("Events-502").encode(),
    ]
    recent = [json.loads(entry) for entry in connection.lrange(keys.recent_events, 0, -1)]
    assert [(entry["id"], entry["outcome"]) for entry in recent] == [("Events-502", "queued"), ("Events-501", "queued")]


def test_ignored_submissions_are_only_recorded_in_recent_events(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    queue = make_queue(connection, keys)
    ignored = queued_event(webhook, "document_created_2020", "Events-601")
    handled = queued_event(webhook, "deployment_succeeded_tenanted", "Events-602")

    # A batch of only ignored events needs no template at all.
    assert [r.outcome for r in queue.store([Submission(ignored, False)])] == ["ignored"]
    results = queue.store([Submission(ignored, False), Submission(handled, True)])
    assert [(r.outcome, r.job_id) for r in results] == [("ignored", None), ("queued", keys.job_id("Events-602"))]

    assert not connection.exists(f"rq:job:{keys.job_id('Events-601')}", keys.dedupe("Events-601"))
    assert connection.lrange(f"rq:queue:{keys.queue_name}", 0, -1) == [keys.job_id("Events-602").encode()]
    recent = [json.loads(entry) for entry in connection.lrange(keys.recent_events, 0, -1)]
    assert [(entry["id"], entry["outcome"]) for entry in recent] == [
        ("Events-602", "queued"),
        ("Events-601", "ignored"),
        ("Events-601", "ignored"),
    ]


def test_template_is_learnt_once_and_sends_only_per_event_values(
    connection: redis.Redis, keys: RedisKeys, webhook: Callable[[str], dict[str, Any]]
) -> None:
    queue = make_queue(connection, keys)
    events = [queued_event(webhook, "deployment_succeeded_tenanted", f"Events-{700 + n}") for n in range(3)]
    one = queue.prepare([Submission(events[0], True)])
    three = queue.prepare([Submission(event, True) for event in events])
    assert queue.template() is queue.template()
    assert len(three.args) - len(one.args) == 2  # one argument (its six values) per further event


def test_a_per_event_field_the_template_cannot_explain_stops_the_learning(
    connection: redis.Redis, keys: RedisKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Job.to_dict

    def with_nonce(self: Job, *args: Any, **kwargs: Any) -> dict[str, Any]:
        mapping = original(self, *args, **kwargs)
        mapping["nonce"] = uuid.uuid4().hex
        return mapping

    monkeypatch.setattr(Job, "to_dict", with_nonce)
    with pytest.raises(RQFormatChanged, match="does not explain"):
        make_queue(connection, keys).template()


def test_learning_stops_if_rq_no_longer_reads_plain_job_data(
    connection: redis.Redis, keys: RedisKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Job.restore

    def compressed_only(self: Job, raw_data: dict[bytes, bytes]) -> Any:
        zlib.decompress(raw_data[b"data"])  # raises for plain data, as an RQ without the fallback would
        return original(self, raw_data)

    monkeypatch.setattr(Job, "restore", compressed_only)
    with pytest.raises(RQFormatChanged, match="cannot read the job"):
        make_queue(connection, keys).template()
