"""The stage the story plays on, all in one process: the Octopus simulator (the sample application), the intake
with its live view, an Octopus subscription delivering to it with its header, a worker, the reconciler and the
promotion scheduler.

Redis is the one in CONDUCTOR_REDIS_URL, else a local one, else an in-memory stand-in, and the demo says which.
Its keys live under a prefix of their own and are removed when the stage comes down. The intake's read token
is made here, for this run: it opens only this intake, only while the demo runs, so the demo may print it; a
read token configured in CONDUCTOR_READ_TOKENS does not open it, and is never printed.
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import redis

from demo.narration import Narrator
from demo.schedule_clock import ScheduleClock
from service.app import create_app as create_intake
from service.octopus_subscription import create_subscription
from service.settings import Settings
from service.threaded_server import free_port, serve_in_thread
from simulator import seed
from simulator.app import create_app as create_simulator
from workers.approval_records import ApprovalStore
from workers.directory import Directory
from workers.dispatch import SUBSCRIPTION_CATEGORIES, handled_categories
from workers.keys import RedisKeys, delete_all
from workers.octopus import OctopusClient, OctopusUnavailable
from workers.plans import PlanStore
from workers.promotion_schedule import PromotionScheduler
from workers.reconciler import reconcile_once
from workers.redis_client import MEMORY_URL, connect
from workers.redis_url import without_password
from workers.rules import load_rules
from workers.runner import ConductorWorker, build_worker, worker_context

SAMPLE_RULES = Path(__file__).resolve().parent.parent / "examples" / "sample-rules.yaml"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Stage:
    octopus_url: str
    intake_url: str
    read_token: str  # made for this run, see the module's docstring
    worker: ConductorWorker
    plans: PlanStore
    approvals: ApprovalStore
    scheduler: PromotionScheduler
    clock: ScheduleClock
    reconciler: Reconciler

    @property
    def live_view_url(self) -> str:
        return f"{self.intake_url}/"


def choose_redis(narrator: Narrator) -> str | None:
    """The Redis to run on: the configured one, a local one, or the in-memory stand-in."""
    configured = os.environ.get("CONDUCTOR_REDIS_URL")
    url = configured or LOCAL_REDIS
    if _reachable(url):
        narrator.say(f"Redis: {without_password(url)} (the demo's keys are removed at the end)")
        return url
    if configured:
        narrator.say(f"Redis: CONDUCTOR_REDIS_URL={without_password(configured)} cannot be reached")
        return None
    narrator.say(f"Redis: none at {LOCAL_REDIS}; running on the embedded in-memory stand-in (nothing is kept)")
    return MEMORY_URL


@contextmanager
def running_stage(redis_url: str, narrator: Narrator) -> Iterator[Stage]:
    """Everything up, until the block ends; then down, and the demo's keys removed."""
    keys = RedisKeys(f"demo-{uuid.uuid4().hex[:8]}")
    read_token = secrets.token_urlsafe(24)
    with ExitStack() as stack:
        port = free_port()
        octopus_url = f"http://127.0.0.1:{port}"
        simulator = create_simulator(
            seed="sample", delivery_interval=0.25, queue_delay=0.2, step_duration=0.3, public_url=octopus_url
        )
        stack.enter_context(serve_in_thread(simulator, port=port))
        narrator.say(f"Octopus simulator: {octopus_url} (Database, Web API, Scheduling Service, Web UI, orchestration)")
        settings = Settings(
            redis_url=LOCAL_REDIS,
            redis_prefix=keys.prefix,
            webhook_secret=secrets.token_urlsafe(24),
            octopus_url=octopus_url,
            octopus_api_key=seed.CONDUCTOR_API_KEY,
            rules=SAMPLE_RULES,
            job_retry_intervals="1,2,5",
            read_tokens=read_token,
            write_tokens=None,
        ).model_copy(update={"redis_url": redis_url})
        connection = connect(redis_url, timeout=5.0)
        stack.callback(delete_all, connection, keys)
        intake_url = stack.enter_context(serve_in_thread(create_intake(settings)))
        narrator.say(f"intake: {intake_url}/webhooks/octopus")
        _subscribe(octopus_url, intake_url, settings, narrator)

        rules = load_rules(SAMPLE_RULES)
        client = OctopusClient(base_url=octopus_url, api_key=seed.CONDUCTOR_API_KEY)
        stack.callback(client.close)
        worker = build_worker(
            connection=connection,
            keys=keys,
            policy=settings.job_policy,
            rules=rules,
            octopus=client,
            retention=settings.retention,
            worker_class=BurstWorker,
        )
        clock = ScheduleClock()
        scheduler = PromotionScheduler(
            worker_context(connection=connection, keys=keys, policy=settings.job_policy, rules=rules, octopus=client),
            clock=clock,
            name="demo-scheduler",
        )
        reconciler = Reconciler(settings, connection, categories=handled_categories(rules))
        reconciler.start()
        stack.callback(reconciler.stop)
        yield Stage(
            octopus_url=octopus_url,
            intake_url=intake_url,
            read_token=read_token,
            worker=worker,
            plans=PlanStore(connection, keys.prefix),
            approvals=ApprovalStore(connection, keys.prefix),
            scheduler=scheduler,
            clock=clock,
            reconciler=reconciler,
        )


def _reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _subscribe(octopus_url: str, intake_url: str, settings: Settings, narrator: Narrator) -> None:
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    with httpx.Client(base_url=octopus_url, headers={"X-Octopus-ApiKey": seed.ADMIN_API_KEY}, timeout=10) as admin:
        created = create_subscription(
            admin, space_id=seed.SPACE_ID, intake_url=intake_url, header=settings.webhook_header, secret=secret
        )
    narrator.say(
        f"Octopus subscription {created['Id']} delivers {', '.join(SUBSCRIPTION_CATEGORIES)} to the intake "
        f"with the header {settings.webhook_header}"
    )


class BurstWorker(ConductorWorker):
    """The demo's worker, run in short bursts on the main thread; each burst enqueues the scheduled jobs that are
    due itself. RQ's maintenance would fork a scheduler process instead, which on the in-memory stand-in enqueues
    into a copy of it and holds the scheduler's lock for a minute, so nothing scheduled ran meanwhile."""

    def run_maintenance_tasks(self) -> None:
        self.clean_registries()  # type: ignore[no-untyped-call]
        self.clean_group_registries()  # type: ignore[no-untyped-call]

    def _install_signal_handlers(self) -> None:
        """None: the demo's own (`demo.run`) stop it between two bursts, and the stage comes down with its keys."""


class Reconciler:
    """The reconciler, every few seconds, as `conductor reconcile --every` runs it."""

    def __init__(self, settings: Settings, connection: redis.Redis, *, categories: frozenset[str]) -> None:
        self._settings = settings
        self._connection = connection
        self._categories = categories
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self.read = self.queued = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        settings = self._settings
        assert settings.octopus_url is not None
        queue = settings.event_queue(self._connection)
        with OctopusClient(base_url=settings.octopus_url, api_key=seed.CONDUCTOR_API_KEY) as client:
            spaces = [Directory(client).space_id("Default")]
            while not self._stop.wait(3.0):
                try:
                    result = reconcile_once(
                        client=client,
                        queue=queue,
                        connection=self._connection,
                        categories=self._categories,
                        spaces=spaces,
                        lookback=timedelta(minutes=1),
                    )
                except OctopusUnavailable:
                    continue
                self.read += result.read
                self.queued += result.queued
