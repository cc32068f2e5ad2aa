"""`conductor worker`: an RQ worker on the conductor's queue that outlasts Redis outages.

A SimpleWorker runs jobs in its own process, so the connections installed in the WorkerContext live as
long as the worker instead of being rebuilt for every job. A killed worker's job is found by the others:
RQ marks a SimpleWorker's running job as abandoned once the job's timeout + 60 s have passed, and an idle
worker cleans the registries between its waits of `worker_ttl` - 15 s (5 s here). With the default job
timeout of 30 s a job abandoned by a SIGKILL is requeued (jobs carry a Retry) within two minutes.

The wip window. RQ adds a popped job to its wip registry (StartedJobRegistry) in one step and marks it
started in a later one. A worker killed between the two left a job that RQ's cleaning passed over (not
started) until its wip entry expired, and then took for one stuck in the intermediate queue for another
minute: about 160 s. `ConductorWorker` does both in one transaction, so a killed worker leaves either a
job still in the intermediate queue (requeued about a minute later) or a started one (requeued when its
wip entry expires).

Redis outages. RQ's worker quits on a Redis error met outside its wait for the next job (at start-up,
in a job's bookkeeping, in maintenance), and its scheduler process dies. Here every such step waits for
Redis (`wait_for_redis`: capped backoff, one line when the wait starts, one when Redis is back) and
carries on. A job whose outcome could not be recorded goes back on the queue once Redis answers, unless
Redis shows the outcome recorded: handlers are idempotent, so running it again is safe; losing it is not.

The task watcher. Each worker (not in burst mode) runs a `workers.task_watcher.TaskWatcher` thread beside
its loop; one of them, the holder of the watcher's lock, reads the plans' tasks in flight and moves them on.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import redis
import structlog
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from workers import runtime
from workers.directory import Directory
from workers.event_queue import JobPolicy
from workers.keys import RedisKeys
from workers.notify_config import NotifyConfig
from workers.octopus import OctopusClient
from workers.plan_sweep import sweep_plans
from workers.redis_wait import UNREACHABLE, reason, wait_for_redis
from workers.retention import DEFAULT_RETENTION, Retention
from workers.rules import Rules
from workers.runtime import WorkerContext
from workers.scheduling import JobScheduler
from workers.task_watcher import TaskWatcher

log = structlog.get_logger("conductor.worker")

Connect = Callable[[], redis.Redis]
# What RQ leaves a job in when it recorded how the job ended (or that it will run again later).
RECORDED = {
    JobStatus.FINISHED,
    JobStatus.FAILED,
    JobStatus.STOPPED,
    JobStatus.CANCELED,
    JobStatus.SCHEDULED,
    JobStatus.DEFERRED,
}
PUBSUB_RETRY_SECONDS = 2.0


class ConductorWorker(SimpleWorker):
    """RQ's SimpleWorker, marking a job started as it enters the wip registry, and waiting out Redis outages."""

    connect: Connect | None = None  # for the scheduler process: a connection of its own
    task_watcher: TaskWatcher | None = None

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        """RQ's loop, with the task watcher beside it while it runs (a burst drains the queue and ends)."""
        watcher = None if burst else self.task_watcher
        if watcher is not None:
            watcher.start()
        try:
            return bool(super().work(burst, *args, **kwargs))
        finally:
            if watcher is not None:
                watcher.stop()

    def _wait_for_redis(self) -> None:
        wait_for_redis(self.connection, what="worker", log=log)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        while True:
            try:
                super().bootstrap(*args, **kwargs)
                return
            except UNREACHABLE:
                self._wait_for_redis()
                # A birth registered before the error would make RQ refuse the name; the name is this process's.
                self._outlasting(lambda: self.connection.delete(self.key))

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's scheduler, as one that waits for Redis too: started here, or enqueueing once in burst mode."""
        scheduler = WaitingScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level or "INFO",
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
            connect=self.connect,
        )
        self.scheduler = scheduler
        if not scheduler.acquire_locks():
            return  # another worker's scheduler holds the queue; maintenance tries again later
        if not burst:
            scheduler.start()  # type: ignore[no-untyped-call]
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's bookkeeping before a job runs, with the job marked started and out of the intermediate queue
        in the same transaction as its entry in the wip registry (see the module's docstring)."""
        intermediate = self._queue_of(job).intermediate_queue_key
        with self.connection.pipeline() as pipeline:
            execution = Execution.create(job, self.get_heartbeat_ttl(job), pipeline=pipeline, worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.lrem(intermediate, 1, job.id)
            pipeline.execute()
        return execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except UNREACHABLE as error:
            log.warning("job outcome not recorded: Redis unreachable", job_id=job.id, error=reason(error))
            self._wait_for_redis()
            self._outlasting(lambda: self._requeue_unrecorded(job, queue))
            self._outlasting(lambda: self.set_state(WorkerStatus.IDLE))

    def _requeue_unrecorded(self, job: Job, queue: Queue) -> None:
        """Put `job` back at the front of its queue unless Redis shows its end recorded or it is queued."""
        try:
            status = job.get_status(refresh=True)
        except (NoSuchJobError, InvalidJobOperation):
            log.warning("job gone from Redis after the outage; nothing to requeue", job_id=job.id)
            return
        if status in RECORDED:
            return
        if status == JobStatus.QUEUED and self.connection.lpos(queue.key, job.id) is not None:
            return  # Redis lost the pop (AOF): the job waits in its queue already
        with self.connection.pipeline() as pipeline:
            for execution in [item for item in self.executions.values() if item.job_id == job.id]:
                execution.delete(job=job, pipeline=pipeline)
                self.executions.pop(execution.id, None)
            pipeline.lrem(queue.intermediate_queue_key, 0, job.id)
            pipeline.execute()
        # Apart: RQ's enqueue opens a transaction of its own. Should Redis go in between, the step is run
        # again and finds the job still unrecorded.
        queue.enqueue_job(job, at_front=True)
        log.info("job requeued after the outage", job_id=job.id, was=status.value)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # only queues commands
            super().heartbeat(timeout, pipeline=pipeline)
            return
        self._outlasting(lambda: super(ConductorWorker, self).heartbeat(timeout))

    def check_for_suspension(self, burst: bool) -> None:
        self._outlasting(lambda: super(ConductorWorker, self).check_for_suspension(burst))

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except UNREACHABLE:
            self._wait_for_redis()
            # Cleaning that broke off may have left RQ's cleaning lock (15 minutes) held by this worker.
            self._outlasting(lambda: [queue.release_maintenance_lock() for queue in self.queues])  # type: ignore[no-untyped-call]

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        if isinstance(exc, UNREACHABLE):
            time.sleep(PUBSUB_RETRY_SECONDS)  # the main loop says in the log that Redis is away
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def teardown(self) -> None:
        try:
            super().teardown()  # type: ignore[no-untyped-call]
        except (*UNREACHABLE, redis.RedisError) as error:  # stopping anyway: the worker key's expiry clears it
            log.warning("worker stopped without telling Redis", error=reason(error))

    def _outlasting(self, step: Callable[[], Any]) -> Any:
        """Run `step`, waiting for Redis and running it again for as long as Redis is unreachable."""
        while True:
            try:
                return step()
            except UNREACHABLE:
                self._wait_for_redis()

    def _queue_of(self, job: Job) -> Queue:
        for queue in self.queues:
            if queue.name == job.origin:
                return queue
        return Queue(job.origin, connection=self.connection, serializer=self.serializer)


class SchedulerStopping(Exception):
    """The scheduler was asked to stop while it waited for Redis."""


class WaitingScheduler(RQScheduler):
    """RQ's scheduler (the process the worker forks), waiting for Redis instead of dying when it goes."""

    def __init__(self, *args: Any, connect: Connect | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connect = connect

    @property
    def connection(self) -> redis.Redis:
        if self._connect is None:
            return cast(redis.Redis, super().connection)
        if self._connection is None:
            self._connection = self._connect()  # type: ignore[assignment]
        return cast(redis.Redis, self._connection)

    def _wait_for_redis(self) -> None:
        wait_for_redis(self.connection, what="scheduler", log=log, sleep=self._sleep_unless_stopping)

    def _sleep_unless_stopping(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < deadline:
            time.sleep(min(0.2, seconds))
        if self._stop_requested:
            raise SchedulerStopping

    def _outlast(self, step: Callable[[], Any], *, again: bool) -> Any:
        """Run `step`; while Redis is unreachable wait for it, then run it again (`again`) or skip it."""
        while True:
            try:
                return step()
            except UNREACHABLE:
                self._wait_for_redis()
                if not again:
                    return None

    def work(self) -> None:
        try:
            super().work()  # type: ignore[no-untyped-call]
        except SchedulerStopping:
            self._quietly(self.stop)

    def register_birth(self) -> None:
        self._outlast(super().register_birth, again=True)

    def acquire_locks(self, auto_start: bool = False) -> set[str]:
        locks: set[str] | None = self._outlast(
            lambda: super(WaitingScheduler, self).acquire_locks(auto_start),  # type: ignore[no-untyped-call]
            again=False,
        )
        return locks or set()

    def heartbeat(self) -> None:
        self._outlast(super().heartbeat, again=False)

    def enqueue_scheduled_jobs(self) -> None:
        self._outlast(super().enqueue_scheduled_jobs, again=False)
        self._status = self.Status.STARTED

    def release_locks(self) -> None:
        self._quietly(super().release_locks)

    def register_death(self) -> bool:
        return bool(self._quietly(super().register_death))

    def _quietly(self, step: Callable[[], Any]) -> Any:
        """On the way out: what Redis does not take now, the locks' and keys' expiry clears."""
        try:
            return step()
        except UNREACHABLE as error:
            log.warning("scheduler stopped without telling Redis: unreachable", error=reason(error))
            return None


def worker_context(
    *,
    connection: redis.Redis,
    keys: RedisKeys,
    policy: JobPolicy | None = None,
    rules: Rules | None = None,
    octopus: OctopusClient | None = None,
    retention: Retention = DEFAULT_RETENTION,
    notify: NotifyConfig | None = None,
) -> WorkerContext:
    """What jobs need: Redis, the rules, Octopus with its name cache, a way to schedule follow-ups, and how long
    to keep what they record, and how to deliver notifications."""
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    return WorkerContext(
        redis=connection,
        keys=keys,
        rules=rules,
        octopus=octopus,
        directory=Directory(octopus) if octopus is not None else None,
        scheduler=JobScheduler(queue, policy or JobPolicy(), keys),
        retention=retention,
        notify=notify or NotifyConfig(),
    )


def build_worker(
    *,
    connection: redis.Redis,
    keys: RedisKeys,
    policy: JobPolicy | None = None,
    rules: Rules | None = None,
    octopus: OctopusClient | None = None,
    retention: Retention = DEFAULT_RETENTION,
    worker_ttl: int = 20,
    maintenance_interval: int = 5,
    connect: Connect | None = None,
    worker_class: type[ConductorWorker] = ConductorWorker,
    watch_tasks: bool = True,
    notify: NotifyConfig | None = None,
) -> ConductorWorker:
    """Install the worker context for this process and return a worker on the event queue (which carries the
    notification deliveries too).

    `connect` makes the scheduler process's own connection (RQ otherwise rebuilds one from `connection`).
    Building talks to Redis (RQ names the connection), so it waits for Redis first. With `watch_tasks` (and
    Octopus and rules to watch for) the worker runs a task watcher too."""
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    context = worker_context(
        connection=connection,
        keys=keys,
        policy=policy,
        rules=rules,
        octopus=octopus,
        retention=retention,
        notify=notify,
    )
    runtime.install(context)
    name = f"{keys.prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    while True:
        wait_for_redis(connection, what="worker", log=log)
        try:
            worker = worker_class(
                # One queue only: RQ takes a job through its intermediate queue (BLMOVE), which its cleaning
                # recovers after a crash, only from a single queue; from several it pops the job (BLPOP), and a
                # worker killed right then loses it. Notification deliveries are jobs of this queue too.
                [queue],
                name=name,
                connection=connection,
                serializer=JSONSerializer,
                worker_ttl=worker_ttl,
                maintenance_interval=maintenance_interval,
            )
            # A plan whose timer was lost with an earlier worker moves on at once (workers.plan_sweep).
            sweep_plans(context.plans, context.require_scheduler())
        except UNREACHABLE:
            continue
        worker.connect = connect
        if watch_tasks and octopus is not None and rules is not None:
            worker.task_watcher = TaskWatcher(context, name=name)
        return worker
