"""Octopus API calls for one promotion of the four sample components, cold and warm caches, by route and phase.

The simulator runs as a process (sample seed, webhooks off); the conductor's code runs in this process, so that
`OctopusClient.calls` can be read. A promotion of Release Orchestration 2021.3.0.1 to Staging: the parent is
deployed as the administrator; its "Plan the release" and "Deploy the components" interruptions and then each
component's `DeploymentSucceeded` are dispatched as the webhook would hand them over, until the plan ends. No
watcher runs and no timer fires (task checks 1 h), so the figure is the event-driven one; Staging's components
have no manual steps, so nothing is relayed.

Cold: a new client and Directory (a worker's first promotion). Warm: the simulator is reset to the same seed (the
same ids), the same client and Directory promote again (a worker's later promotions), with a fresh Redis space.

Phases: `plan` (everything the "Plan the release" event costs but answering it), `create` (choosing and creating
each component's deployment, and the outcome events that move the plan on), `parent's steps` (reading, taking
and submitting the parent's interruptions), `relay` (a component's interruptions), `watch` (task reads).

    .venv/bin/python -m bench.promotion_calls
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bench.harness import (
    DEFAULT_REDIS_URL,
    admin,
    command_parser,
    emit,
    python_env,
    quiet_logs,
    redis_space,
    say,
    wait_for,
)
from bench.harness import server as running_server
from bench.octopus_calls import wait_finished_event
from simulator.seed import CONDUCTOR_API_KEY, ORCHESTRATION_2021_3_RELEASE_ID, SPACE_ID, STAGING_ID
from workers import dispatch
from workers.directory import Directory
from workers.event_queue import JobPolicy
from workers.events import OctopusEvent, QueuedEvent, utcnow
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plans import Plan, PlanStore
from workers.rules import parse_rules
from workers.runtime import WorkerContext
from workers.scheduling import JobScheduler

RAISED = "ManualInterventionInterruptionRaised"
PLAN_STEP, DEPLOY_STEP = "Plan the release", "Deploy the components"
RULES = """\
orchestrations:
  - name: sample-app
    space: Default
    parent_project: Release Orchestration
    release_pattern: "{parent:3}.*"
    components:
      - project: Database
      - project: Web API
      - project: Scheduling Service
      - project: Web UI
    redeploy:
      task_check_seconds: 3600
    promotion:
      task_check_seconds: 3600
    approvals:
      enabled: false
"""


def phase_of(route: str, during: str, parent_interruptions: bool) -> str:
    """Which phase a call belongs to: interruptions and tasks by their route, the rest by the event handled."""
    if "/interruptions" in route:
        return "parent's steps" if parent_interruptions else "relay"
    if route.startswith("GET /api/tasks"):
        return "watch"
    return during


def raised_event(octopus: httpx.Client, parent_id: str, title: str) -> OctopusEvent:
    """The ManualInterventionInterruptionRaised of the parent's interruption `title`, once it is pending."""

    def interruption() -> dict[str, Any] | None:
        items = octopus.get(f"/api/{SPACE_ID}/interruptions", params={"regarding": parent_id}).json()["Items"]
        return next((item for item in items if item["Title"] == title and item["IsPending"]), None)

    found = wait_for(f"'{title}' pending in {parent_id}", interruption)
    params = {"regarding": found["Id"], "eventCategories": RAISED}
    items = wait_for(f"{RAISED} of {found['Id']}", lambda: octopus.get("/api/events", params=params).json()["Items"])
    return OctopusEvent.model_validate(items[0])


class Counted:
    """The calls the conductor makes while handling each event, by route and by phase."""

    def __init__(self, client: OctopusClient) -> None:
        self.client = client
        self.by_route: Counter[str] = Counter()
        self.by_phase: Counter[str] = Counter()
        self.events: list[dict[str, Any]] = []

    def handle(self, event: OctopusEvent, context: WorkerContext, during: str, label: str) -> None:
        mark = Counter(self.client.calls)
        dispatch.dispatch(QueuedEvent(event=event, source="webhook", received_at=utcnow()), context)
        made = Counter(self.client.calls) - mark
        self.by_route += made
        for route, count in made.items():
            self.by_phase[phase_of(route, during, parent_interruptions=True)] += count
        self.events.append({"event": label, "calls": made.total()})


def one_promotion(sim_url: str, context: WorkerContext, client: OctopusClient) -> tuple[Counted, Plan]:
    counted = Counted(client)
    with admin(sim_url) as octopus:
        body = {"ReleaseId": ORCHESTRATION_2021_3_RELEASE_ID, "EnvironmentId": STAGING_ID}
        created = octopus.post(f"/api/{SPACE_ID}/deployments", json=body)
        created.raise_for_status()
        parent = created.json()
        counted.handle(raised_event(octopus, parent["Id"], PLAN_STEP), context, "plan", PLAN_STEP)
        counted.handle(raised_event(octopus, parent["Id"], DEPLOY_STEP), context, "create", DEPLOY_STEP)
        store = PlanStore(context.redis, context.keys.prefix)
        handled: set[str] = set()
        deadline = time.monotonic() + 120
        while True:
            plan = store.load(f"promotion-{parent['Id']}")
            assert plan is not None
            waiting = [s.deployment_id for s in plan.steps if s.in_flight and s.deployment_id not in handled]
            if plan.status != "running" or not waiting:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{plan.id} did not finish: {plan.model_dump_json()}")
            deployment_id = str(waiting[0])
            finished = wait_finished_event(octopus, deployment_id)
            counted.handle(finished, context, "create", f"{finished.Category} {deployment_id}")
            handled.add(deployment_id)
        done = wait_for(
            "the parent to finish", lambda: octopus.get(f"/api/tasks/{parent['TaskId']}").json()["IsCompleted"]
        )
        assert done
    return counted, plan


def context_for(connection: redis.Redis, keys: RedisKeys, client: OctopusClient, directory: Directory) -> WorkerContext:
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    return WorkerContext(
        redis=connection,
        keys=keys,
        rules=parse_rules(RULES),
        octopus=client,
        directory=directory,
        scheduler=JobScheduler(queue, JobPolicy(), keys),
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say("Octopus API calls for one promotion of Release Orchestration 2021.3.0.1 to Staging (4 components)")
    figures: dict[str, Any] = {}
    options = ["--delivery-interval", "3600", "--queue-delay", "0", "--step-duration", "0.02"]
    with (
        running_server("simulator", env=python_env(), log=args.log, options=options, ready_path="/api") as sim,
        admin(sim.url) as octopus,
    ):
        client = OctopusClient(base_url=sim.url, api_key=CONDUCTOR_API_KEY)
        directory = Directory(client)
        try:
            for cache in ("cold", "warm"):
                octopus.post("/_simulator/reset", json={"Seed": "sample"}).raise_for_status()
                with redis_space(args.redis_url) as (connection, keys):
                    counted, plan = one_promotion(sim.url, context_for(connection, keys, client, directory), client)
                deployed = [step for step in plan.steps if step.deployment_id]
                choose_and_create = counted.by_phase["plan"] + counted.by_phase["create"]
                figures[cache] = {
                    "total": counted.by_route.total(),
                    "by_phase": dict(counted.by_phase),
                    "by_route": dict(sorted(counted.by_route.items())),
                    "events": counted.events,
                    "steps": {step.project: step.status for step in plan.steps},
                    "plan_and_create_per_component": round(choose_and_create / len(plan.steps), 2),
                    "plan_and_create_per_deployment": round(choose_and_create / max(len(deployed), 1), 2),
                }
                render(cache, figures[cache])
        finally:
            client.close()
    return figures


def render(cache: str, row: dict[str, Any]) -> None:
    phases = ", ".join(f"{phase}: {count}" for phase, count in row["by_phase"].items())
    say(
        f"  {cache} caches: {row['total']} calls ({phases}); plan + create per component "
        f"{row['plan_and_create_per_component']} ({row['plan_and_create_per_deployment']} per deployment made)"
    )
    say("    " + ", ".join(f"{event['event']}: {event['calls']}" for event in row["events"]))
    for route, count in row["by_route"].items():
        say(f"      {count:>3}  {route}")
    say(f"    steps: {row['steps']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.promotion_calls", __doc__)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    quiet_logs()
    with tempfile.TemporaryDirectory(prefix="bench-promotion-") as tmp:
        args.log = Path(tmp) / "simulator.log"
        emit("promotion_calls", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
