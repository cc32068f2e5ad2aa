"""Redeploy plans run in this process against the simulator over real HTTP, with real Redis: a burst
worker on the main thread runs each due job, so a test sees every state a plan passes through and can
build the Octopus client (timeout, retries, transport) and the rules it needs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from service.threaded_server import serve_in_thread
from simulator.app import create_app as create_simulator
from simulator.seed import CONDUCTOR_API_KEY, SPACE_ID
from tests.support.stack import RULES, octopus
from workers import redeploy, runtime
from workers.event_queue import JobPolicy
from workers.events import OctopusEvent
from workers.keys import RedisKeys
from workers.octopus import OctopusClient, RetryPolicy
from workers.plans import Plan, PlanStore
from workers.rules import parse_rules
from workers.runner import worker_context
from workers.runtime import WorkerContext

T = TypeVar("T")


def rules_with(*, redeploy_settings: dict[str, Any] | None = None, channels: dict[str, str] | None = None) -> str:
    """The sample rules, gathering window 0, with more redeploy settings and channels per component."""
    text = RULES.format(window=0)
    extra = "".join(f"      {name}: {value}\n" for name, value in (redeploy_settings or {}).items())
    text = text.replace("      task_check_seconds: 1\n", "      task_check_seconds: 1\n" + extra)
    for project, channel in (channels or {}).items():
        line = f"      - project: {project}\n"
        text = text.replace(line, f"{line}        channel: {channel}\n")
    return text


@dataclass
class Harness:
    sim_url: str
    connection: redis.Redis
    keys: RedisKeys
    client: OctopusClient
    context: WorkerContext
    seen: list[Plan] = field(default_factory=list)

    @property
    def plans(self) -> PlanStore:
        return PlanStore(self.connection, self.keys.prefix)

    def admin(self) -> httpx.Client:
        return octopus(self.sim_url)

    def add_machine(self, name: str, environment_ids: list[str], roles: list[str], **extra: Any) -> dict[str, Any]:
        body = {
            "Name": name,
            "EnvironmentIds": environment_ids,
            "Roles": roles,
            "Endpoint": {"CommunicationStyle": "None"},
            "SkipInitialHealthCheck": True,
            **extra,
        }
        with self.admin() as admin:
            response = admin.post(f"/api/{SPACE_ID}/machines", json=body)
        assert response.status_code == 201, response.text
        machine: dict[str, Any] = response.json()
        return machine

    def machine_added(self, machine: dict[str, Any]) -> dict[str, Any]:
        """Hand the machine's MachineAdded event to the conductor, as a worker would."""
        with self.admin() as admin:
            params = {"regarding": machine["Id"], "eventCategories": "MachineAdded"}
            (event,) = admin.get("/api/events", params=params).json()["Items"]
        return redeploy.on_machine_event(OctopusEvent.model_validate(event), self.context)

    def run_until(self, what: str, probe: Callable[[], T | None], *, timeout: float = 60.0) -> T:
        """Run due jobs until `probe` answers; every plan state after each round is kept in `seen`."""
        queue = Queue(self.keys.queue_name, connection=self.connection, serializer=JSONSerializer)
        worker = SimpleWorker([queue], connection=self.connection, serializer=JSONSerializer)
        deadline = time.monotonic() + timeout
        while True:
            self.seen += self.plans.recent()
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                states = "\n".join(plan.model_dump_json(indent=1) for plan in self.plans.recent())
                raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{states}")
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
            time.sleep(0.1)

    def finished(self, count: int = 1, *, timeout: float = 60.0) -> list[Plan]:
        def probe() -> list[Plan] | None:
            plans = self.plans.recent()
            return plans if len(plans) >= count and all(plan.status != "running" for plan in plans) else None

        return sorted(self.run_until(f"{count} finished plan(s)", probe, timeout=timeout), key=lambda p: p.id)

    def deployments_since(self, first_id: int) -> list[dict[str, Any]]:
        with self.admin() as admin:
            items = admin.get(f"/api/{SPACE_ID}/deployments", params={"take": 2000}).json()["Items"]
        return sorted((d for d in items if _number(d["Id"]) > first_id), key=lambda d: _number(d["Id"]))

    def last_deployment_number(self) -> int:
        with self.admin() as admin:
            items = admin.get(f"/api/{SPACE_ID}/deployments", params={"take": 1}).json()["Items"]
        return _number(items[0]["Id"]) if items else 0

    def task(self, task_id: str) -> dict[str, Any]:
        with self.admin() as admin:
            task: dict[str, Any] = admin.get(f"/api/tasks/{task_id}").json()
        return task

    def set_clock(self, **durations: float) -> None:
        with self.admin() as admin:
            assert admin.put("/_simulator/clock", json=durations).status_code == 200

    def add_fault(self, **rule: Any) -> None:
        with self.admin() as admin:
            response = admin.post("/_simulator/faults", json=rule)
        assert response.status_code == 201, response.text

    def clear_faults(self) -> None:
        with self.admin() as admin:
            assert admin.delete("/_simulator/faults").status_code == 200


def _number(document_id: str) -> int:
    return int(document_id.rsplit("-", 1)[1])


@contextmanager
def plan_harness(
    connection: redis.Redis,
    keys: RedisKeys,
    *,
    rules: str | None = None,
    client_timeout: float = 10.0,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    queue_delay: float = 0.05,
    step_duration: float = 0.05,
) -> Iterator[Harness]:
    app = create_simulator(seed="sample", delivery_interval=60, queue_delay=queue_delay, step_duration=step_duration)
    with serve_in_thread(app) as sim_url:
        client = OctopusClient(
            base_url=sim_url, api_key=CONDUCTOR_API_KEY, timeout=client_timeout, retry=retry, transport=transport
        )
        context = worker_context(
            connection=connection,
            keys=keys,
            policy=JobPolicy(retry_intervals=(1,)),
            rules=parse_rules(rules or rules_with()),
            octopus=client,
        )
        runtime.install(context)
        try:
            yield Harness(sim_url, connection, keys, client, context)
        finally:
            client.close()
