"""Nothing lost: the reconciler catches up from Octopus's audit log, and `replay` requeues failed jobs."""

from __future__ import annotations

import re
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from service.replay import replay_failed
from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import CONDUCTOR_API_KEY, SPACE_ID, STAGING_ID, WEB_API_ID, WEB_ROLE, WEB_UI_ID
from tests.support.stack import CONDUCTOR, octopus, running_stack
from tests.support.webhooks import load_webhook
from workers.event_queue import EventQueue, JobPolicy, Submission
from workers.events import QueuedEvent, WebhookEnvelope, utcnow
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.reconciler import cursor_key, reconcile_once
from workers.runner import build_worker

pytestmark = pytest.mark.slow


def reconcile(env: dict[str, str]) -> tuple[int, int]:
    result = subprocess.run([CONDUCTOR, "reconcile"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    match = re.search(r"read (\d+) events: (\d+) queued", result.stdout)
    assert match is not None, result.stdout
    return int(match.group(1)), int(match.group(2))


def test_with_webhooks_off_the_reconciler_still_does_the_whole_job(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path) as stack:
        with stack.admin as client:
            for subscription in client.get("/api/subscriptions/all").json():
                assert client.delete(f"/api/subscriptions/{subscription['Id']}").status_code == 200
        before = stack.last_deployment_number()
        stack.add_machine("stg-web-rec-1", STAGING_ID, [WEB_ROLE])
        with stack.admin as client:
            # Let the first health check happen, so that both machine events are in the log.
            client.post("/_simulator/deliver")

        read, queued = reconcile(stack.worker_env)
        stack.finished_plans(1)
        read_after, queued_after = reconcile(stack.worker_env)
        _, queued_again = reconcile(stack.worker_env)
        deployments = stack.deployments_since(before)

    assert read >= 1
    assert queued >= 1
    assert [d["ProjectId"] for d in deployments] == [WEB_API_ID, WEB_UI_ID]
    # The deployments' own events, caught up too; then nothing new, however often it runs.
    assert queued_after >= 2
    assert read_after >= queued_after
    assert queued_again == 0


def test_events_the_webhook_brought_are_not_queued_again(redis_url: str, keys: RedisKeys, tmp_path: Path) -> None:
    with running_stack(redis_url, keys, tmp_path) as stack:
        stack.add_machine("stg-web-rec-2", STAGING_ID, [WEB_ROLE])
        stack.finished_plans(1)
        with stack.admin as client:
            logged = client.get("/api/events", params={"eventCategories": "MachineAdded", "spaces": SPACE_ID}).json()
        read, queued = reconcile(stack.worker_env)

    assert logged["TotalResults"] >= 1
    assert read >= 1
    # Webhooks already queued every recent event; the reconciler finds them all as duplicates.
    assert queued == 0


def test_replay_requeues_a_failed_event_once_its_cause_is_fixed(connection: redis.Redis, keys: RedisKeys) -> None:
    no_retries = JobPolicy(retry_intervals=())
    queue = EventQueue(connection=connection, keys=keys, policy=no_retries, dedupe_window_seconds=600)
    body = load_webhook("deployment_succeeded_tenanted")
    queued = QueuedEvent.from_webhook(WebhookEnvelope.model_validate(body), received_at=utcnow())
    queue.store([Submission(queued, True)])
    # The cause: the outcome's key holds a value of the wrong type, so recording the outcome fails.
    connection.set(keys.deployment_outcome("Deployments-310"), "not a hash")
    build_worker(connection=connection, keys=keys).work(burst=True, logging_level="WARNING")
    registry = FailedJobRegistry(queue=Queue(keys.queue_name, connection=connection, serializer=JSONSerializer))
    assert registry.get_job_ids() == [keys.job_id("Events-90511")]

    untouched = replay_failed(connection, keys, event_ids=["Events-1"])
    connection.delete(keys.deployment_outcome("Deployments-310"))  # the fix
    replayed = replay_failed(connection, keys, event_ids=None)
    build_worker(connection=connection, keys=keys).work(burst=True, logging_level="WARNING")

    assert not untouched.ok
    assert "not in the failed registry" in untouched.lines[0]
    assert replayed.lines == [f"{keys.job_id('Events-90511')}: requeued"]
    assert registry.count == 0
    assert connection.hget(keys.deployment_outcome("Deployments-310"), "result") == b"Success"


def test_replay_command_reports_what_it_did(redis_url: str, keys: RedisKeys) -> None:
    env = {"CONDUCTOR_REDIS_URL": redis_url, "CONDUCTOR_REDIS_PREFIX": keys.prefix, "PATH": "/usr/bin:/bin"}

    result = subprocess.run([CONDUCTOR, "replay", "--all-failed"], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no failed jobs"


def test_events_older_than_the_dedupe_window_are_left_alone(
    connection: redis.Redis, keys: RedisKeys, tmp_path: Path
) -> None:
    app = create_simulator(seed="sample", delivery_interval=3600)
    with serve_in_thread(app) as url, OctopusClient(base_url=url, api_key=CONDUCTOR_API_KEY) as client:
        queue = EventQueue(connection=connection, keys=keys, policy=JobPolicy(), dedupe_window_seconds=7 * 86400)
        # As if the reconciler had last run when the seed's history began.
        connection.set(cursor_key(keys), "2000-01-01T00:00:00+00:00")

        result = reconcile_once(
            client=client,
            queue=queue,
            connection=connection,
            categories={"DeploymentSucceeded", "DeploymentFailed"},
            spaces=[SPACE_ID],
            lookback=timedelta(hours=1),
        )

    # The seed's deployments happened weeks ago: their dedupe records could be gone, so nothing is redone.
    assert result.too_old > 0
    assert result.queued == 0
    assert result.cursor is not None
    assert result.cursor > datetime(2000, 1, 1, tzinfo=UTC)
    assert Queue(keys.queue_name, connection=connection, serializer=JSONSerializer).count == 0


def test_a_periodic_reconciler_stops_on_sigterm_and_frees_its_lock(
    redis_url: str, keys: RedisKeys, tmp_path: Path
) -> None:
    with running_stack(redis_url, keys, tmp_path, workers=0) as stack:
        process = subprocess.Popen(
            [CONDUCTOR, "reconcile", "--every", "1"], env=stack.worker_env, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        first_pass = process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        code = process.wait(10)

    assert first_pass.startswith("read ")
    assert code == 0
    assert stack.connection.get(f"{keys.prefix}:lock:reconciler") is None


def test_nothing_is_skipped_across_a_restart_when_event_ids_are_not_auto_ids(
    connection: redis.Redis, keys: RedisKeys
) -> None:
    categories = {"MachineAdded"}

    def reconcile_with_new_objects(url: str) -> tuple[int, int]:
        """One pass, as a freshly started reconciler makes it: nothing carried over but Redis."""
        with OctopusClient(base_url=url, api_key=CONDUCTOR_API_KEY) as client:
            queue = EventQueue(connection=connection, keys=keys, policy=JobPolicy(), dedupe_window_seconds=7 * 86400)
            result = reconcile_once(
                client=client,
                queue=queue,
                connection=connection,
                categories=categories,
                spaces=[SPACE_ID],
                lookback=timedelta(hours=1),
            )
        return result.queued, result.duplicates

    app = create_simulator(seed="sample", delivery_interval=3600)
    with serve_in_thread(app) as url, octopus(url) as admin:
        # Three nodes, each handing out its own block of ids: ids no longer follow the order of the log.
        assert admin.put("/_simulator/event-ids", json={"Nodes": 3, "BlockSize": 50}).status_code == 200
        first = [add_quiet_machine(admin, f"stg-web-blocks-{n}") for n in range(3)]
        queued_first, _ = reconcile_with_new_objects(url)
        later = [add_quiet_machine(admin, f"stg-web-blocks-{n}") for n in range(3, 9)]
        queued_later, duplicates = reconcile_with_new_objects(url)
        # What a cursor on the Events- number (fromAutoId = highest number + 1 - 20) would have read.
        highest = max(int(event_id.split("-")[1]) for event_id in first)
        by_auto_id = admin.get(
            "/api/events", params={"eventCategories": "MachineAdded", "fromAutoId": highest + 1 - 20, "take": 1000}
        ).json()["Items"]

    queued = set(Queue(keys.queue_name, connection=connection, serializer=JSONSerializer).job_ids)
    assert set(later) - {event["Id"] for event in by_auto_id}  # the old cursor would have skipped some
    assert (queued_first, queued_later, duplicates) == (3, 6, 3)  # the overlap re-reads the first three
    assert queued == {keys.job_id(event_id) for event_id in first + later}


def add_quiet_machine(admin: httpx.Client, name: str) -> str:
    """A machine whose only event is MachineAdded; returns that event's id."""
    body = {
        "Name": name,
        "EnvironmentIds": [STAGING_ID],
        "Roles": [WEB_ROLE],
        "Endpoint": {"CommunicationStyle": "TentaclePassive", "Uri": f"https://{name}.example.test:10933/"},
        "SkipInitialHealthCheck": True,
    }
    machine = admin.post(f"/api/{SPACE_ID}/machines", json=body)
    assert machine.status_code == 201, machine.text
    events = admin.get("/api/events", params={"regarding": machine.json()["Id"], "eventCategories": "MachineAdded"})
    (event,) = events.json()["Items"]
    return str(event["Id"])
