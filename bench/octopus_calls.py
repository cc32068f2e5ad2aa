"""Octopus API calls per machine event, and that the figure does not grow with the projects in the space.

The simulator runs as a process (sample seed); the conductor's code runs here, in this process, so that
`OctopusClient.calls` can be read: `redeploy.on_machine_event` for a `MachineAdded` of a new web server in
Staging (rules: the 4 sample components, group window 0, so the plan starts at once), then, as a webhook
would, `dispatch` of each `DeploymentSucceeded` the simulator writes for the plan's deployments, until the
plan is finished. No timer fires (task check 1 h), so no task is polled: the figure is the event-driven one.

Two machine events per space size: the first with a new client (cold caches: a worker's first event), the
second with the same client (warm caches: every later event). Space sizes: the sample (5 projects: the 4
components and the parent) and then `--projects` (default 200) after creating the others through the API
as the administrator, each with a deployment process whose step targets the same web-server role.

    .venv/bin/python -m bench.octopus_calls [--projects 200]
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
    MACHINES_PATH,
    RULES,
    admin,
    command_parser,
    emit,
    new_web_server,
    python_env,
    quiet_logs,
    redis_space,
    say,
    server,
)
from simulator.seed import CONDUCTOR_API_KEY, SPACE_ID, WEB_ROLE
from workers import dispatch, redeploy
from workers.directory import Directory
from workers.event_queue import JobPolicy
from workers.events import OctopusEvent, QueuedEvent, utcnow
from workers.keys import RedisKeys
from workers.octopus import OctopusClient, route_name
from workers.plans import Plan, PlanStore
from workers.rules import parse_rules
from workers.runtime import WorkerContext
from workers.scheduling import JobScheduler

FINISHED = "DeploymentSucceeded,DeploymentFailed"


class CountingTransport(httpx.HTTPTransport):
    """Counts the bytes of every answer, per route (the client itself counts the calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.bytes[f"{request.method} {route_name(request.url.path)}"] += len(response.read())
        return response


def add_machine(octopus: httpx.Client, name: str) -> OctopusEvent:
    created = octopus.post(MACHINES_PATH, json=new_web_server(name))
    created.raise_for_status()
    machine_id = created.json()["Id"]
    events = octopus.get("/api/events", params={"regarding": machine_id, "eventCategories": "MachineAdded"}).json()
    return OctopusEvent.model_validate(events["Items"][0])


def fill_space(octopus: httpx.Client, total: int) -> int:
    """Create projects until the space holds `total`; each gets a process with a web-server step."""
    existing = len(octopus.get(f"/api/{SPACE_ID}/projects/all").json())
    for number in range(existing + 1, total + 1):
        project = octopus.post(
            f"/api/{SPACE_ID}/projects",
            json={
                "Name": f"Other service {number}",
                "ProjectGroupId": "ProjectGroups-1",
                "LifecycleId": "Lifecycles-1",
            },
        )
        project.raise_for_status()
        process_path = f"/api/{SPACE_ID}/deploymentprocesses/{project.json()['DeploymentProcessId']}"
        process = octopus.get(process_path).json()
        process["Steps"] = [
            {
                "Name": "Deploy",
                "Properties": {"Octopus.Action.TargetRoles": WEB_ROLE},
                "Actions": [
                    {
                        "Name": "Deploy",
                        "ActionType": "Octopus.TentaclePackage",
                        "Properties": {"Octopus.Action.Package.PackageId": f"other-{number}"},
                    }
                ],
            }
        ]
        octopus.put(process_path, json=process).raise_for_status()
    return len(octopus.get(f"/api/{SPACE_ID}/projects/all").json())


def wait_finished_event(octopus: httpx.Client, deployment_id: str, timeout: float = 60) -> OctopusEvent:
    deadline = time.monotonic() + timeout
    while True:
        found = octopus.get("/api/events", params={"regarding": deployment_id, "eventCategories": FINISHED}).json()
        if found["Items"]:
            return OctopusEvent.model_validate(found["Items"][0])
        if time.monotonic() > deadline:
            raise RuntimeError(f"{deployment_id} did not finish within {timeout} s")
        time.sleep(0.02)


def one_machine_event(
    sim_url: str, context: WorkerContext, client: OctopusClient, name: str
) -> tuple[Counter[str], list[dict[str, Any]], Plan]:
    """Calls made for one MachineAdded, from the event to the plan's end; and the calls per phase."""
    before = Counter(client.calls)
    phases: list[dict[str, Any]] = []
    with admin(sim_url) as octopus:
        event = add_machine(octopus, name)
        mark = Counter(client.calls)
        gathered = redeploy.on_machine_event(event, context)
        phases.append({"phase": "MachineAdded", "calls": (client.calls - mark).total()})
        plan_id = gathered["gathered"][0]["plan"]
        store = PlanStore(context.redis, context.keys.prefix)
        handled: set[str] = set()
        deadline = time.monotonic() + 120
        while True:
            plan = store.load(plan_id)
            assert plan is not None
            if plan.status != "running":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"plan {plan_id} did not finish: {plan.model_dump_json()}")
            waiting = [s.deployment_id for s in plan.steps if s.status == "deploying" and s.deployment_id]
            waiting = [deployment for deployment in waiting if deployment not in handled]
            if not waiting:
                raise RuntimeError(f"plan {plan_id} waits for nothing: {plan.model_dump_json()}")
            deployment_id = waiting[0]
            finished = wait_finished_event(octopus, deployment_id)
            mark = Counter(client.calls)
            queued = QueuedEvent(event=finished, source="webhook", received_at=utcnow())
            dispatch.dispatch(queued, context)
            handled.add(deployment_id)
            phases.append({"phase": f"{finished.Category} {deployment_id}", "calls": (client.calls - mark).total()})
    return Counter(client.calls) - before, phases, plan


def measure_space(sim_url: str, connection: redis.Redis, keys: RedisKeys, label: str) -> dict[str, Any]:
    transport = CountingTransport()
    client = OctopusClient(base_url=sim_url, api_key=CONDUCTOR_API_KEY, transport=transport)
    queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    context = WorkerContext(
        redis=connection,
        keys=keys,
        rules=parse_rules(RULES.format(window=0, task_check=3600, triggers="MachineAdded")),
        octopus=client,
        directory=Directory(client),
        scheduler=JobScheduler(queue, JobPolicy(), keys),
    )
    figures: dict[str, Any] = {}
    try:
        for cache in ("cold", "warm"):
            bytes_before = Counter(transport.bytes)
            calls, phases, plan = one_machine_event(sim_url, context, client, f"stg-web-{label}-{cache}")
            answered = transport.bytes - bytes_before
            figures[cache] = {
                "total": calls.total(),
                "by_route": dict(sorted(calls.items())),
                "phases": phases,
                "bytes": answered.total(),
                "bytes_by_route": dict(sorted(answered.items())),
                "deployments": [s.deployment_id for s in plan.steps if s.deployment_id],
                "steps": {s.project: s.status for s in plan.steps},
            }
    finally:
        client.close()
    return figures


def render(label: str, projects: int, figures: dict[str, Any]) -> None:
    for cache in ("cold", "warm"):
        row = figures[cache]
        phases = ", ".join(f"{phase['phase']}: {phase['calls']}" for phase in row["phases"])
        say(
            f"  {projects:>3} projects, {cache} caches: {row['total']} calls, {row['bytes'] / 1024:.1f} KiB answered "
            f"({len(row['deployments'])} deployments: {', '.join(row['deployments'])}; {phases})"
        )
        for route, count in row["by_route"].items():
            say(f"        {count:>3}  {route}  ({row['bytes_by_route'].get(route, 0) / 1024:.1f} KiB)")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say("Octopus API calls for one MachineAdded (Staging, web-server; 2 of the 4 components apply)")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp, redis_space(args.redis_url) as (connection, keys):
        options = ["--delivery-interval", "3600", "--queue-delay", "0", "--step-duration", "0.02"]
        with server(
            "simulator", env=python_env(), log=Path(tmp) / "simulator.log", options=options, ready_path="/api"
        ) as sim:
            with admin(sim.url) as octopus:
                sample = len(octopus.get(f"/api/{SPACE_ID}/projects/all").json())
            results["sample"] = {"projects": sample, **measure_space(sim.url, connection, keys, "sample")}
            render("sample", sample, results["sample"])
            with admin(sim.url) as octopus:
                started = time.perf_counter()
                total = fill_space(octopus, args.projects)
                say(
                    f"  (created {total - sample} projects with web-server steps "
                    f"in {time.perf_counter() - started:.1f} s)"
                )
            results["large"] = {"projects": total, **measure_space(sim.url, connection, keys, "large")}
            render("large", total, results["large"])
    same = all(
        results["sample"][cache]["by_route"] == results["large"][cache]["by_route"] for cache in ("cold", "warm")
    )
    results["same_calls_at_both_sizes"] = same
    large = results["large"]
    say(
        f"one machine event in a space of {large['projects']} projects: {large['cold']['total']} calls with cold "
        f"caches, {large['warm']['total']} with warm caches; the same per route as with "
        f"{results['sample']['projects']} "
        f"projects: {'yes' if same else 'NO'}"
    )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.octopus_calls", __doc__)
    parser.add_argument("--projects", type=int, default=200, help="projects in the large space (default 200)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    if not 5 <= args.projects <= 2000:
        parser.error("--projects must be in [5, 2000]")
    quiet_logs()
    emit("octopus_calls", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
