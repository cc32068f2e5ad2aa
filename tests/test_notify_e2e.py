"""A plan's end, notified: a real HTTP receiver on loopback (uvicorn) gets the summary as JSON with a valid
Standard Webhooks signature, a real SMTP server (aiosmtpd) gets it as plain text, once per plan end; a
receiver that is down does not hold the plan up, and its delivery is retried, then reported failed.
In-process plans against the simulator over HTTP, real Redis, RQ workers on both queues."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any, TypeVar

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.metrics import QueueCollector
from service.status import read_status, render
from service.threaded_server import free_port, serve_in_thread
from simulator.seed import STAGING_ID, WEB_ROLE
from tests.support.plan_harness import Harness, plan_harness, rules_with
from workers import runtime
from workers.keys import RedisKeys
from workers.notifications import Delivery, NotificationStore, notify_plan_end
from workers.notify_config import NotifyConfig, SmtpServer
from workers.plan_advance import advance_plan, on_deployment_finished
from workers.plans import Plan

pytestmark = pytest.mark.slow
T = TypeVar("T")
SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
OLD_SECRET = "whsec_" + base64.b64encode(bytes(range(64, 88))).decode()


@dataclasses.dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@contextmanager
def http_receiver() -> Iterator[tuple[str, list[Received]]]:
    received: list[Received] = []

    async def plan_ended(request: Request) -> Response:
        received.append(Received(dict(request.headers), await request.body()))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/plan-ended", plan_ended, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield f"{url}/plan-ended", received


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append((envelope, message_from_bytes(envelope.content)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[SmtpServer, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield (
            SmtpServer(host="127.0.0.1", port=controller.port, security="none", sender="conductor@example.com"),
            mailbox,
        )
    finally:
        controller.stop()


def notifying(harness: Harness, notify: dict[str, Any], config: NotifyConfig) -> None:
    """The harness's worker context with these rules' notify and these delivery settings."""
    context = dataclasses.replace(harness.context, notify=config)
    rules = rules_with() + f"    notify: {json.dumps(notify)}\n"
    from workers.rules import parse_rules

    context = dataclasses.replace(context, rules=parse_rules(rules))
    harness.context = context
    runtime.install(context)


def run_the_queue(harness: Harness, what: str, probe: Callable[[], T | None], *, timeout: float = 60.0) -> T:
    """A worker on the events' queue, which holds the deliveries too, as `conductor worker` runs, until `probe`
    answers."""
    queues = [Queue(harness.keys.queue_name, connection=harness.connection, serializer=JSONSerializer)]
    worker = SimpleWorker(queues, connection=harness.connection, serializer=JSONSerializer)
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        time.sleep(0.1)


def redeploy_to_new_web_server(harness: Harness, name: str) -> None:
    machine = harness.add_machine(name, [STAGING_ID], [WEB_ROLE])
    harness.machine_added(machine)


def only_plan(harness: Harness) -> Plan | None:
    plans = harness.plans.recent()
    return plans[0] if len(plans) == 1 and plans[0].status in ("succeeded", "failed") else None


def deliveries(connection: redis.Redis, keys: RedisKeys, plan_id: str) -> dict[str, Delivery]:
    store = NotificationStore(connection, keys, runtime.current().retention)
    return {delivery.destination: delivery for delivery in store.of_plan(plan_id)}


def spec_signatures_valid(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Standard Webhooks, from the spec: v1 = base64(HMAC-SHA256(base64-decoded secret, "id.timestamp.body"))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [item.split(",", 1) for item in headers["webhook-signature"].split(" ")]
    return any(version == "v1" and hmac.compare_digest(value, expected) for version, value in given)


@pytest.fixture
def harness(connection: redis.Redis, keys: RedisKeys) -> Iterator[Harness]:
    with plan_harness(connection, keys) as ready:
        yield ready


def test_a_plan_that_ends_is_posted_signed_to_the_receiver_and_mailed_once(harness: Harness) -> None:
    with http_receiver() as (url, received), smtp_server() as (smtp, mailbox):
        notify = {"webhooks": [{"url": url}], "email": {"to": ["Ops <ops@example.com>"], "kinds": ["redeploy"]}}
        secrets = (SecretStr(SECRET), SecretStr(OLD_SECRET))
        notifying(harness, notify, NotifyConfig(signing_secrets=secrets, smtp=smtp, timeout_seconds=5))
        redeploy_to_new_web_server(harness, "stg-web-notify")
        plan = run_the_queue(harness, "the plan's end", lambda: only_plan(harness))
        assert plan.status == "succeeded"
        run_the_queue(harness, "both deliveries", lambda: received and mailbox.messages)

        # The end seen again: a late DeploymentSucceeded after the watcher, and another advance.
        deployed = [step for step in plan.steps if step.deployment_id]
        assert deployed, plan.report
        on_deployment_finished(str(deployed[-1].deployment_id), harness.context)
        advance_plan(plan.id, harness.context)
        assert not notify_plan_end(plan, harness.context)
        run_the_queue(harness, "nothing more queued", lambda: _queues_empty(harness))

    (post,) = received
    assert post.headers["content-type"] == "application/json"
    assert post.headers["webhook-id"] == f"{plan.id}-webhook-0"
    assert spec_signatures_valid(post.headers, post.body, SECRET)
    assert spec_signatures_valid(post.headers, post.body, OLD_SECRET)  # both signatures during a rotation
    assert not spec_signatures_valid(post.headers, post.body + b" ", SECRET)
    payload = Webhook(SECRET).verify(post.body, post.headers)  # the library's verifier agrees
    assert payload["type"] == "plan.ended"
    data = payload["data"]
    assert (data["plan"], data["kind"], data["orchestration"], data["outcome"]) == (
        plan.id,
        "redeploy",
        "sample-app",
        "succeeded",
    )
    assert data["environment"] == {"id": STAGING_ID, "name": "Staging"}
    assert data["machines"] == plan.machine_ids
    assert [(c["project"], c["outcome"], c["deployment"], c["task"], c["release"]) for c in data["components"]] == [
        (step.project, step.status, step.deployment_id, step.task_id, step.release_version) for step in plan.steps
    ]
    for component in data["components"]:
        assert (component["duration_seconds"] is not None) == (component["deployment"] is not None)
        assert component["outcome"] != "skipped" or component["reason"]

    ((envelope, mail),) = mailbox.messages
    assert envelope.rcpt_tos == ["ops@example.com"]
    assert mail["From"] == "conductor@example.com"
    assert mail["Subject"] == "[Release Conductor] sample-app: redeploy to Staging succeeded"
    text = mail.get_payload(decode=True)
    assert isinstance(text, bytes)
    for step in plan.steps:
        assert f"{step.project}" in text.decode()
    assert f"deployment {deployed[-1].deployment_id}, task {deployed[-1].task_id}" in text.decode()

    recorded = deliveries(harness.connection, harness.keys, plan.id)
    assert {name: (item.status, item.attempts) for name, item in recorded.items()} == {
        "webhook-0": ("delivered", 1),
        "email": ("delivered", 1),
    }
    retention = harness.context.retention.seconds
    for key in (f"notification:{plan.id}", "notifications"):
        assert 0 < harness.connection.ttl(f"{harness.keys.prefix}:{key}") <= retention


def test_a_receiver_that_is_down_does_not_hold_up_the_plan_and_is_reported_after_its_retries(
    harness: Harness,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/plan-ended"  # nothing listens there
    config = NotifyConfig(signing_secrets=(SecretStr(SECRET),), timeout_seconds=1, retry_intervals=(1, 1))
    notifying(harness, {"webhooks": [{"url": dead}]}, config)
    redeploy_to_new_web_server(harness, "stg-web-dead-receiver")
    # Plan and deliveries share the worker: when the plan is first seen ended, its delivery has not used up
    # its attempts (each retry waits a second), so the plan's end did not wait for them.
    plan = run_the_queue(harness, "the plan's end", lambda: only_plan(harness))
    at_plan_end = deliveries(harness.connection, harness.keys, plan.id)["webhook-0"]
    assert plan.status == "succeeded"
    assert at_plan_end.status in ("queued", "retrying")
    assert at_plan_end.attempts < config.attempts

    def given_up() -> Delivery | None:
        delivery = deliveries(harness.connection, harness.keys, plan.id)["webhook-0"]
        return delivery if delivery.status == "failed" else None

    failed = run_the_queue(harness, "the delivery given up", given_up)
    assert failed.attempts == config.attempts == 3
    assert failed.last_error == "could not reach 127.0.0.1: ConnectError"
    events_queue = Queue(harness.keys.queue_name, connection=harness.connection, serializer=JSONSerializer)
    assert FailedJobRegistry(queue=events_queue).get_job_ids() == [
        NotificationStore(harness.connection, harness.keys, runtime.current().retention).job_id(plan.id, "webhook-0")
    ]
    shown = render(read_status(harness.connection, harness.keys))
    assert (
        f"  {plan.id}  webhook-0  failed    3/3 attempts  127.0.0.1 (could not reach 127.0.0.1: ConnectError)" in shown
    )
    collector = QueueCollector(connection=harness.connection, queue_name=harness.keys.queue_name)
    (_, failed_jobs, _) = list(collector.collect())
    assert {sample.labels["queue"]: sample.value for sample in failed_jobs.samples} == {harness.keys.queue_name: 1}


def test_two_workers_seeing_one_plan_end_at_once_queue_one_notification(harness: Harness) -> None:
    config = NotifyConfig(signing_secrets=(SecretStr(SECRET),))
    notifying(harness, {"webhooks": [{"url": "http://127.0.0.1:9/a"}, {"url": "http://127.0.0.1:9/b"}]}, config)
    plan = Plan(
        id="plan-race",
        orchestration="sample-app",
        space_id="Spaces-1",
        environment_id=STAGING_ID,
        tenant_id=None,
        machine_ids=["Machines-1"],
        steps=[],
        status="failed",
    )
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def see_the_end() -> None:
        barrier.wait()
        results.append(notify_plan_end(plan, harness.context))

    threads = [threading.Thread(target=see_the_end) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    events_queue = Queue(harness.keys.queue_name, connection=harness.connection, serializer=JSONSerializer)
    assert sorted(events_queue.get_job_ids()) == sorted(
        NotificationStore(harness.connection, harness.keys, runtime.current().retention).job_id(plan.id, name)
        for name in ("webhook-0", "webhook-1")
    )
    running = plan.model_copy(update={"status": "running"})
    assert not notify_plan_end(running, harness.context)  # a plan that has not ended is not notified


def _queues_empty(harness: Harness) -> bool:
    return Queue(harness.keys.queue_name, connection=harness.connection, serializer=JSONSerializer).count == 0
