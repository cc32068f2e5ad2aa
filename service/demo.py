"""`conductor demo`: the whole product against the bundled Octopus simulator, in one process.

The simulator (sample application), the intake, a worker and the reconciler run here; an Octopus
subscription delivers to the intake with its header; then the story of `service.demo_story` plays and
is checked against Octopus's API. Redis is the one in CONDUCTOR_REDIS_URL, else a local one, else an
in-memory stand-in, and the demo says which. It keeps its keys under a prefix of its own and removes
them at the end.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import redis

from service.app import create_app as create_intake
from service.demo_story import Cast, Narrator, Outcome, Story
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
from workers.reconciler import reconcile_once
from workers.redis_client import MEMORY_URL, connect
from workers.redis_url import without_password
from workers.rules import load_rules
from workers.runner import build_worker

SAMPLE_RULES = Path(__file__).resolve().parent.parent / "examples" / "sample-rules.yaml"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


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


def run_demo(*, timeout: float = 90.0) -> int:
    narrator = Narrator()
    narrator.heading("Release Conductor demo: the sample application of the release-orchestration story")
    if not SAMPLE_RULES.exists():
        narrator.say(f"cannot find {SAMPLE_RULES}: run the demo from a checkout of the repository")
        return 2
    redis_url = choose_redis(narrator)
    if redis_url is None:
        return 2
    keys = RedisKeys(f"demo-{uuid.uuid4().hex[:8]}")
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
        )
        story = Story(
            octopus_url=octopus_url,
            plans=PlanStore(connection, keys.prefix),
            approvals=ApprovalStore(connection, keys.prefix),
            cast=_cast(),
            narrator=narrator,
            timeout=timeout,
        )
        result: list[Outcome] = []
        story_thread = threading.Thread(target=lambda: result.append(story.play()), name="story", daemon=True)
        reconciled = _Reconciler(settings, connection, rules_categories=handled_categories(rules))
        reconciled.start()
        story_thread.start()
        # RQ's worker installs signal handlers, so it runs here on the main thread, in short bursts.
        while story_thread.is_alive():
            worker.work(burst=True, with_scheduler=True, logging_level="ERROR")
            time.sleep(0.05)
        reconciled.stop()
        outcome = result[0] if result else Outcome([(False, "the story ended without an outcome")])
        _summarise(narrator, outcome, reconciled)
    return 0 if outcome.ok else 1


def _reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _subscribe(octopus_url: str, intake_url: str, settings: Settings, narrator: Narrator) -> None:
    import httpx

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    with httpx.Client(base_url=octopus_url, headers={"X-Octopus-ApiKey": seed.ADMIN_API_KEY}, timeout=10) as admin:
        created = create_subscription(
            admin, space_id=seed.SPACE_ID, intake_url=intake_url, header=settings.webhook_header, secret=secret
        )
    narrator.say(
        f"Octopus subscription {created['Id']} delivers {', '.join(SUBSCRIPTION_CATEGORIES)} to the intake "
        f"with the header {settings.webhook_header}"
    )


def _cast() -> Cast:
    return Cast(
        space_id=seed.SPACE_ID,
        admin_key=seed.ADMIN_API_KEY,
        qa_key=seed.QA_API_KEY,
        qa_username=seed.QA_USERNAME,
        web_admin_key=seed.WEB_ADMIN_API_KEY,
        web_admin_username=seed.WEB_ADMIN_USERNAME,
        business_owner_key=seed.BUSINESS_OWNER_API_KEY,
        business_owner_username=seed.BUSINESS_OWNER_USERNAME,
        conductor_user_id=seed.CONDUCTOR_USER_ID,
        staging_id=seed.STAGING_ID,
        production_id=seed.PRODUCTION_ID,
        web_role=seed.WEB_ROLE,
        web_ui_id=seed.WEB_UI_ID,
        orchestration_project_id=seed.ORCHESTRATION_ID,
        people_by_team={
            seed.QA_TEAM_ID: (seed.QA_API_KEY, seed.QA_USERNAME),
            seed.WEB_ADMINS_TEAM_ID: (seed.WEB_ADMIN_API_KEY, seed.WEB_ADMIN_USERNAME),
            seed.DBAS_TEAM_ID: (seed.DBA_API_KEY, seed.DBA_USERNAME),
        },
    )


class _Reconciler:
    """The reconciler, every few seconds, as `conductor reconcile --every` runs it."""

    def __init__(self, settings: Settings, connection: redis.Redis, *, rules_categories: frozenset[str]) -> None:
        self._settings = settings
        self._connection = connection
        self._categories = rules_categories
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


def _summarise(narrator: Narrator, outcome: Outcome, reconciled: _Reconciler) -> None:
    narrator.heading("Summary (checked against the Octopus API)")
    for ok, text in outcome.checks:
        narrator.say(f"{'ok ' if ok else 'FAILED'} {text}")
    narrator.say(
        f"reconciler: read {reconciled.read} audit events; {reconciled.queued} reached the queue through it "
        "before their webhook did, the rest were already there"
    )
    narrator.say("the story happened" if outcome.ok else "part of the story did not happen")
