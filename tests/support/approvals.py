"""The approval relay's test bench: the simulator acted on by the people of the seed through its REST API,
deployments made as the service account with the binding the conductor records, and the relay's records and
scheduled looks read back from real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import ADMIN_API_KEY, CONDUCTOR_API_KEY, PRODUCTION_ID, SPACE_ID
from tests.support.stack import rules_text, wait_for
from workers import approval_relay, jobs, runtime
from workers.approval_binding import ApprovalBinding, ApprovalBindings, BindingKind, marker
from workers.approval_records import ApprovalRelay, ApprovalStore
from workers.event_queue import JobPolicy
from workers.events import OctopusEvent
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.rules import parse_rules
from workers.runner import worker_context
from workers.runtime import WorkerContext

APPROVALS = {"keep_looking_seconds": 60, "look_again_seconds": 2, "look_again_max_seconds": 5}


class Octopus:
    """The simulator, acted on by the people of the seed through its REST API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = httpx.Client(base_url=url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}, timeout=10)

    def as_user(self, api_key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Octopus-ApiKey": api_key}, timeout=10)

    def release(self, project_id: str, version: str) -> str:
        found = self.admin.get(f"/api/{SPACE_ID}/projects/{project_id}/releases/{version}")
        assert found.status_code == 200, found.text
        return str(found.json()["Id"])

    def deploy(
        self, release_id: str, environment_id: str = PRODUCTION_ID, *, api_key: str = ADMIN_API_KEY, **extra: Any
    ) -> dict[str, Any]:
        with self.as_user(api_key) as deployer:
            response = deployer.post(
                f"/api/{SPACE_ID}/deployments", json={"ReleaseId": release_id, "EnvironmentId": environment_id, **extra}
            )
        assert response.status_code == 201, response.text
        deployment: dict[str, Any] = response.json()
        return deployment

    def deploy_parent(self, release_id: str, environment_id: str = PRODUCTION_ID) -> dict[str, Any]:
        """A Release Orchestration deployment past "Plan the release", answered as the service account, as the
        conductor's promotion does (these tests run the approval relay alone)."""
        parent = self.deploy(release_id, environment_id)
        self.answer(CONDUCTOR_API_KEY, self.pending_step(parent, "Plan the release"))
        return parent

    def interruptions(self, regarding: str, *, pending: bool = False) -> list[dict[str, Any]]:
        params = {"regarding": regarding, **({"pendingOnly": "true"} if pending else {})}
        items: list[dict[str, Any]] = self.admin.get(f"/api/{SPACE_ID}/interruptions", params=params).json()["Items"]
        return items

    def pending_step(self, deployment: dict[str, Any], title: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            return next((i for i in self.interruptions(deployment["Id"], pending=True) if i["Title"] == title), None)

        return wait_for(f"'{title}' pending in {deployment['Id']}", probe, timeout=10, interval=0.02)

    def interruption(self, interruption_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.admin.get(f"/api/{SPACE_ID}/interruptions/{interruption_id}").json()
        return found

    def answer(self, api_key: str, interruption: dict[str, Any], result: str = "Proceed") -> None:
        base = f"/api/{SPACE_ID}/interruptions/{interruption['Id']}"
        with self.as_user(api_key) as person:
            assert person.put(f"{base}/responsible").status_code == 200
            assert person.post(f"{base}/submit", json={"Notes": "Signed off.", "Result": result}).status_code == 200

    def task_state(self, deployment: dict[str, Any]) -> str:
        return str(self.admin.get(f"/api/tasks/{deployment['TaskId']}").json()["State"])

    def raised_event(self, interruption: dict[str, Any]) -> OctopusEvent:
        params = {"regarding": interruption["Id"], "eventCategories": approval_relay.CATEGORY}
        (event,) = self.admin.get("/api/events", params=params).json()["Items"]
        return OctopusEvent.model_validate(event)

    def submissions(self, interruption_id: str) -> list[dict[str, Any]]:
        params = {"regarding": interruption_id, "eventCategories": "InterruptionSubmitted"}
        items: list[dict[str, Any]] = self.admin.get("/api/events", params=params).json()["Items"]
        return items

    def submitted_at(self, interruption_id: str) -> str:
        """When the audit log says an interruption was submitted, as the relay's notes write it."""
        (submitted,) = self.submissions(interruption_id)
        return datetime.fromisoformat(submitted["Occurred"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.fixture
def octopus() -> Iterator[Octopus]:
    app = create_simulator(seed="sample", delivery_interval=3600, queue_delay=0, step_duration=0, health_check_delay=0)
    with serve_in_thread(app) as url:
        yield Octopus(url)


@pytest.fixture
def client(octopus: Octopus) -> Iterator[OctopusClient]:
    with OctopusClient(base_url=octopus.url, api_key=CONDUCTOR_API_KEY) as conductor:
        yield conductor


def context_for(connection: redis.Redis, keys: RedisKeys, client: OctopusClient, **approvals: Any) -> WorkerContext:
    rules = parse_rules(rules_text(window=0, approvals={**APPROVALS, **approvals}))
    policy = JobPolicy(retry_intervals=(1,))
    return worker_context(connection=connection, keys=keys, policy=policy, rules=rules, octopus=client)


@pytest.fixture
def context(connection: redis.Redis, keys: RedisKeys, client: OctopusClient) -> WorkerContext:
    return context_for(connection, keys, client)


def conductor_deploys(
    octopus: Octopus,
    context: WorkerContext,
    release_id: str,
    *,
    kind: BindingKind,
    name: str,
    parent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A deployment made as the service account, with the binding recorded before it, as the conductor does."""
    binding = ApprovalBinding(
        kind=kind,
        marker=name,
        release_id=release_id,
        environment_id=PRODUCTION_ID,
        tenant_id=None,
        parent_deployment_id=parent["Id"] if parent else None,
        plan_id=name.split("/")[0],
    )
    ApprovalBindings(context.redis, context.keys.prefix).record(binding)
    return octopus.deploy(release_id, api_key=CONDUCTOR_API_KEY, Comments=f"Release Conductor {marker(name)}: a test")


def record_of(context: WorkerContext, interruption_id: str) -> ApprovalRelay:
    record = ApprovalStore(context.redis, context.keys.prefix).load(interruption_id)
    assert record is not None
    return record


def relay(octopus: Octopus, context: WorkerContext, interruption: dict[str, Any]) -> ApprovalRelay:
    """Deliver the interruption's raised event to the relay, and return its record."""
    approval_relay.on_intervention_raised(octopus.raised_event(interruption), context)
    return record_of(context, interruption["Id"])


def scheduled_looks(context: WorkerContext) -> list[tuple[Job, float]]:
    """The looks again waiting in RQ, with how far ahead each is due (seconds)."""
    queue = Queue(context.keys.queue_name, connection=context.redis, serializer=JSONSerializer)
    registry = ScheduledJobRegistry(queue=queue)
    found = []
    for job_id in registry.get_job_ids():
        job = Job.fetch(job_id, connection=context.redis, serializer=JSONSerializer)
        due = registry.get_scheduled_time(job_id).timestamp() - time.time()
        found.append((job, due))
    return found


def run_look(look: Job, context: WorkerContext) -> dict[str, Any]:
    """Run a scheduled look now, through its job entry point, instead of after its delay."""
    look.cancel()
    runtime.install(context)
    outcome: dict[str, Any] = jobs.look_again_for_approval(*look.args)
    return outcome
