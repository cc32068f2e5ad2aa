"""`conductor worker`: an RQ worker on the conductor's queue.

A SimpleWorker runs jobs in its own process, so the connections installed in the WorkerContext live as
long as the worker instead of being rebuilt for every job. A killed worker's job is found by the others:
RQ marks a SimpleWorker's running job as abandoned once the job's timeout + 60 s have passed, and an idle
worker cleans the registries between its waits of `worker_ttl` - 15 s (5 s here). With the default job
timeout of 30 s a job abandoned by a SIGKILL is requeued (jobs carry a Retry) within two minutes.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from workers import runtime
from workers.directory import Directory
from workers.event_queue import JobPolicy
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plan_sweep import sweep_plans
from workers.rules import Rules
from workers.runtime import WorkerContext
from workers.scheduling import JobScheduler


def worker_context(
    *,
    connection: redis.Redis,
    keys: RedisKeys,
    policy: JobPolicy | None = None,
    rules: Rules | None = None,
    octopus: OctopusClient | None = None,
) -> WorkerContext:
    """What jobs need: Redis, the rules, Octopus with its name cache, and a way to schedule follow-ups."""
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    return WorkerContext(
        redis=connection,
        keys=keys,
        rules=rules,
        octopus=octopus,
        directory=Directory(octopus) if octopus is not None else None,
        scheduler=JobScheduler(queue, policy or JobPolicy(), keys),
    )


def build_worker(
    *,
    connection: redis.Redis,
    keys: RedisKeys,
    policy: JobPolicy | None = None,
    rules: Rules | None = None,
    octopus: OctopusClient | None = None,
    worker_ttl: int = 20,
    maintenance_interval: int = 5,
) -> SimpleWorker:
    """Install the worker context for this process and return an RQ worker on the event queue."""
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    context = worker_context(connection=connection, keys=keys, policy=policy, rules=rules, octopus=octopus)
    runtime.install(context)
    # A plan whose timer was lost with an earlier worker moves on at once (workers.plan_sweep).
    sweep_plans(context.plans, context.require_scheduler())
    name = f"{keys.prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return SimpleWorker(
        [queue],
        name=name,
        connection=connection,
        serializer=JSONSerializer,
        worker_ttl=worker_ttl,
        maintenance_interval=maintenance_interval,
    )
