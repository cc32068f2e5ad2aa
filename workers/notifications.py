"""A plan's end, notified once: one delivery job per destination the rules name, each a job of its own.

`notify_plan_end` is called by every advance of a plan (`workers.plan_advance`); for a plan that has ended
it records the notification and queues its deliveries in one Redis transaction, once per plan end: a second
advance of the same ended plan (a late `DeploymentSucceeded` after the task watcher, a retried job) finds the
record and queues nothing. The plan never waits on a delivery: the jobs run apart from it, on the events'
queue (the one queue a worker takes jobs from, so that a crash never loses one), each with RQ's `Retry`
(`CONDUCTOR_NOTIFY_RETRY_INTERVALS`) and a bounded number of attempts (`workers.notify_delivery`).

Kept in Redis for the retention (`workers.retention`): per plan a hash `notification:<plan>` (when it was
queued, and a JSON record per destination: where to, status, attempts, last error), and the index
`notifications`; RQ keeps the delivery jobs as it keeps every job (`workers.event_queue.JobPolicy`). Job
arguments are the plan id and the destination's name, never a secret.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import redis
import structlog
from pydantic import BaseModel, Field
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from workers.event_queue import JobPolicy
from workers.events import utcnow
from workers.keys import RedisKeys
from workers.notify_config import NotifyConfig
from workers.plans import Plan
from workers.redis_client import as_text
from workers.retention import Retention
from workers.rules import NotifyRule
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.notify")

DELIVER_JOB = "workers.jobs.deliver_notification"
# RQ keeps a delivery job as long as any other job; the delivery's own record is kept for the retention.
RQ_KEPT = JobPolicy()
DeliveryStatus = Literal["queued", "retrying", "delivered", "failed"]
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class Delivery(BaseModel):
    """One destination of a plan's notification, and how its delivery went."""

    destination: str = Field(description="webhook-<n> (the rules' n-th receiver, from 0) or email")
    channel: Literal["webhook", "email"]
    url: str | None = None
    to: list[str] = Field(default_factory=list)
    status: DeliveryStatus = "queued"
    attempts: int = 0
    max_attempts: int
    last_error: str | None = None
    delivered_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


def deliveries_for(plan: Plan, rule: NotifyRule, config: NotifyConfig) -> list[Delivery]:
    """The destinations that want to hear of this plan's end (its kind and outcome)."""
    out = [
        Delivery(destination=f"webhook-{index}", channel="webhook", url=receiver.url, max_attempts=config.attempts)
        for index, receiver in enumerate(rule.webhooks)
        if receiver.wants(plan.kind, plan.status)
    ]
    email = rule.email
    if email is not None and email.wants(plan.kind, plan.status):
        out.append(
            Delivery(
                destination="email", channel="email", to=[str(to) for to in email.to], max_attempts=config.attempts
            )
        )
    return out


class NotificationStore:
    def __init__(self, connection: redis.Redis, keys: RedisKeys, retention: Retention) -> None:
        self._redis = connection
        self._keys = keys
        self._retention = retention

    def key(self, plan_id: str) -> str:
        return f"{self._keys.prefix}:notification:{plan_id}"

    @property
    def _index(self) -> str:
        return f"{self._keys.prefix}:notifications"

    def queue(self) -> Queue:
        return Queue(self._keys.queue_name, connection=self._redis, serializer=JSONSerializer)

    def queue_once(self, plan: Plan, deliveries: list[Delivery], config: NotifyConfig) -> bool:
        """Record the plan's notification and queue its deliveries, unless this plan end was queued before.
        All or nothing: a worker killed half way leaves neither the record nor a job."""
        key = self.key(plan.id)
        queue = self.queue()
        now = utcnow()
        with self._redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                if pipe.exists(key):
                    return False
                pipe.multi()
                pipe.hset(key, "queued_at", now.isoformat())
                for delivery in deliveries:
                    pipe.hset(key, delivery.destination, delivery.model_dump_json())
                pipe.expire(key, self._retention.seconds)
                self._retention.index(pipe, self._index, plan.id, at=now, now=now)
                for delivery in deliveries:
                    queue.enqueue_call(
                        DELIVER_JOB,
                        args=(plan.id, delivery.destination),
                        job_id=self.job_id(plan.id, delivery.destination),
                        timeout=config.job_timeout_seconds,
                        result_ttl=RQ_KEPT.result_ttl_seconds,
                        failure_ttl=RQ_KEPT.failure_ttl_seconds,
                        retry=Retry(max=len(config.retry_intervals), interval=list(config.retry_intervals))
                        if config.retry_intervals
                        else None,
                        pipeline=pipe,
                    )
                pipe.execute()
            except redis.WatchError:
                return False  # another worker queued this plan end at the same moment
        return True

    def job_id(self, plan_id: str, destination: str) -> str:
        return f"{self._keys.prefix}-notify-{_JOB_ID_UNSAFE.sub('_', plan_id)}-{destination}"

    def delivery(self, plan_id: str, destination: str) -> Delivery | None:
        raw = self._redis.hget(self.key(plan_id), destination)
        return None if raw is None else Delivery.model_validate_json(raw)

    def save(self, plan_id: str, delivery: Delivery) -> None:
        delivery.updated_at = utcnow()
        key = self.key(plan_id)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, delivery.destination, delivery.model_dump_json())
            pipe.expire(key, self._retention.seconds)
            pipe.execute()

    def of_plan(self, plan_id: str) -> list[Delivery]:
        fields = self._redis.hgetall(self.key(plan_id))
        return [
            Delivery.model_validate_json(raw)
            for name, raw in sorted((as_text(name), raw) for name, raw in fields.items())
            if name != "queued_at"
        ]

    def recent(self, limit: int = 20) -> list[tuple[str, list[Delivery]]]:
        """The newest plans' notifications, each with its deliveries."""
        ids = [as_text(item) for item in self._redis.zrevrange(self._index, 0, limit - 1)]  # type: ignore[arg-type]
        return [(plan_id, self.of_plan(plan_id)) for plan_id in ids]


def notify_plan_end(plan: Plan, context: WorkerContext) -> bool:
    """Queue the notification of the plan's end, once; False when the plan has not ended, nobody wants to hear
    of it, or it was queued before."""
    if plan.status not in ("succeeded", "failed") or context.rules is None:
        return False
    rule = next((item for item in context.rules.orchestrations if item.name == plan.orchestration), None)
    if rule is None:
        return False
    deliveries = deliveries_for(plan, rule.notify, context.notify)
    if not deliveries:
        return False
    store = NotificationStore(context.redis, context.keys, context.retention)
    if not store.queue_once(plan, deliveries, context.notify):
        return False
    log.info("notification queued", plan=plan.id, destinations=[item.destination for item in deliveries])
    return True
