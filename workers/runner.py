"""`conductor worker`: an RQ worker on the conductor's queue.

A SimpleWorker runs jobs in its own process, so the connections installed in the WorkerContext live as
long as the worker instead of being rebuilt for every job. A short `worker_ttl` and maintenance interval
let a surviving worker notice a killed one and requeue its job within a couple of minutes.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from workers import runtime
from workers.keys import RedisKeys
from workers.runtime import WorkerContext


def build_worker(
    *,
    connection: redis.Redis,
    keys: RedisKeys,
    worker_ttl: int = 30,
    maintenance_interval: int = 5,
) -> SimpleWorker:
    """Install the worker context for this process and return an RQ worker on the event queue."""
    runtime.install(WorkerContext(redis=connection, keys=keys))
    name = f"{keys.prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return SimpleWorker(
        [keys.queue_name],
        name=name,
        connection=connection,
        serializer=JSONSerializer,
        worker_ttl=worker_ttl,
        maintenance_interval=maintenance_interval,
    )


def run_worker(*, connection: redis.Redis, keys: RedisKeys, burst: bool = False) -> bool:
    """Work until stopped (or, with `burst`, until the queue is empty)."""
    worker = build_worker(connection=connection, keys=keys)
    return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
