"""Burst: `--machines` new targets added within one second to one environment.

The whole product as in `bench.reaction_latency` (simulator with delivery interval 0, the intake,
`--workers` `conductor worker` processes), with `group_window_seconds: --window` (default 2). The
machines (web servers in Staging, where 2 of the 4 sample components apply: Web API and Web UI) are
created through the API, spread evenly over one second. Reported: the conductor's deployments (target:
one per applicable component, each to every machine), the plans, and the time from the first
MachineAdded's `Occurred` to the last deployment's `Created` and to the last plan's end.

    .venv/bin/python -m bench.burst [--machines 100] [--window 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    DEFAULT_REDIS_URL,
    MACHINES_PATH,
    admin,
    command_parser,
    conductor_env,
    emit,
    new_web_server,
    python_env,
    redis_space,
    say,
    server,
    tail,
    worker,
    write_rules,
)
from bench.reaction_latency import SUBSCRIBED, iso, subscribe
from simulator.seed import ADMIN_API_KEY, CONDUCTOR_API_KEY, SPACE_ID
from workers.plans import Plan, PlanStore

APPLICABLE = ("Web API", "Web UI")


async def add_machines(sim_url: str, count: int, seconds: float, tag: str) -> list[str]:
    """Create `count` machines, the i-th due at i * seconds / count after the start."""
    async with httpx.AsyncClient(base_url=sim_url, headers={"X-Octopus-ApiKey": ADMIN_API_KEY}, timeout=30) as client:
        started = time.perf_counter()

        async def one(index: int) -> str:
            await asyncio.sleep(max(0.0, started + index * seconds / count - time.perf_counter()))
            name = f"stg-web-{tag}-{index:03d}"
            created = await client.post(MACHINES_PATH, json=new_web_server(name))
            created.raise_for_status()
            machine_id: str = created.json()["Id"]
            return machine_id

        return list(await asyncio.gather(*(one(index) for index in range(count))))


def plans_covering(store: PlanStore, machines: set[str]) -> list[Plan]:
    return [plan for plan in store.recent(500) if machines & set(plan.machine_ids)]


def wait_all_finished(store: PlanStore, machines: set[str], timeout: float, log: Path) -> list[Plan]:
    deadline = time.monotonic() + timeout
    while True:
        plans = plans_covering(store, machines)
        covered = {machine for plan in plans for machine in plan.machine_ids}
        if covered >= machines and all(plan.status != "running" for plan in plans):
            return plans
        if time.monotonic() > deadline:
            missing = sorted(machines - covered)
            raise RuntimeError(
                f"plans not finished within {timeout} s ({len(plans)} plans; machines in no plan: {missing[:10]})\n"
                f"{tail(log)}"
            )
        time.sleep(0.05)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say(
        f"burst: {args.machines} web servers added to Staging within {args.spread:g} s; group window "
        f"{args.window:g} s; {args.workers} worker(s)"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp,
        redis_space(args.redis_url) as (connection, keys),
        ExitStack() as stack,
    ):
        directory = Path(tmp)
        rules = write_rules(directory / "rules.yaml", window=args.window, task_check=30)
        sim_options = ["--delivery-interval", "0", "--queue-delay", "0", "--step-duration", str(args.step_duration)]
        sim = stack.enter_context(
            server(
                "simulator", env=python_env(), log=directory / "simulator.log", options=sim_options, ready_path="/api"
            )
        )
        env = conductor_env(
            redis_url=args.redis_url, keys=keys, rules=rules, octopus_url=sim.url, octopus_api_key=CONDUCTOR_API_KEY
        )
        intake = stack.enter_context(server("intake", env=env, log=directory / "intake.log"))
        log = directory / "worker.log"
        for _ in range(args.workers):
            stack.enter_context(worker(env, log))
        octopus = stack.enter_context(admin(sim.url))
        subscribe(octopus, intake.url, SUBSCRIBED)
        time.sleep(1.0)  # the workers register before the burst starts
        machines = asyncio.run(add_machines(sim.url, args.machines, args.spread, "burst"))
        plans = wait_all_finished(PlanStore(connection, keys.prefix), set(machines), args.timeout, log)
        events = octopus.get(
            "/api/events", params={"eventCategories": "MachineAdded", "take": args.machines + 10}
        ).json()["Items"]
        occurred = [iso(event["Occurred"]) for event in events if event["RelatedDocumentIds"][0] in machines]
        deployments = []
        for plan in plans:
            for step in plan.steps:
                if step.deployment_id:
                    deployment = octopus.get(f"/api/{SPACE_ID}/deployments/{step.deployment_id}").json()
                    deployments.append((plan, step, deployment))
    first_event = min(occurred)
    created = [iso(deployment["Created"]) for _, _, deployment in deployments]
    finished = [plan.finished_at for plan in plans if plan.finished_at is not None]
    per_component = Counter(step.project for _, step, _ in deployments)
    machines_per_component = {
        project: len({m for _, step, d in deployments if step.project == project for m in d["SpecificMachineIds"]})
        for project in per_component
    }

    def since_first(moment: datetime) -> float:
        return round((moment - first_event).total_seconds(), 3)

    figures: dict[str, Any] = {
        "machines": len(machines),
        "window_s": args.window,
        "workers": args.workers,
        "step_duration_s": args.step_duration,
        "events_spread_s": round((max(occurred) - first_event).total_seconds(), 3),
        "plans": len(plans),
        "deployments": len(deployments),
        "deployments_per_component": dict(per_component),
        "machines_per_component": machines_per_component,
        "to_last_deployment_created_s": since_first(max(created)) if created else None,
        "to_plan_started_s": since_first(min(plan.created_at for plan in plans)),
        "to_first_deployment_created_s": since_first(min(created)) if created else None,
        "to_last_plan_finished_s": since_first(max(finished)) if finished else None,
        "one_per_applicable_component": dict(per_component) == dict.fromkeys(APPLICABLE, 1)
        and all(count == len(machines) for count in machines_per_component.values()),
    }
    say(
        f"{figures['machines']} MachineAdded events over {figures['events_spread_s']} s -> {figures['plans']} plan(s), "
        f"{figures['deployments']} deployment(s): "
        + ", ".join(
            f"{project} {count} (to {machines_per_component[project]} machines)"
            for project, count in per_component.items()
        )
    )
    say(
        f"  first MachineAdded -> plan started {figures['to_plan_started_s']} s (window {args.window:g} s, then RQ's "
        f"scheduler, which looks every 1 s), -> first deployment created {figures['to_first_deployment_created_s']} s, "
        f"-> last deployment created {figures['to_last_deployment_created_s']} s, "
        f"-> last plan finished {figures['to_last_plan_finished_s']} s"
    )
    say(
        f"  target one deployment per applicable component ({', '.join(APPLICABLE)}), each to every machine: "
        f"{'reached' if figures['one_per_applicable_component'] else 'not reached'}"
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.burst", __doc__)
    parser.add_argument("--machines", type=int, default=100, help="machines added (default 100)")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which they are added (default 1)")
    parser.add_argument("--window", type=float, default=2.0, help="group_window_seconds (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="conductor worker processes (default 1)")
    parser.add_argument("--step-duration", type=float, default=0.02, help="simulator seconds per step (default 0.02)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds (default 120)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    if not 1 <= args.machines <= 500 or not 1 <= args.workers <= 4 or not 0 < args.timeout <= 600:
        parser.error("--machines must be in [1, 500], --workers in [1, 4], --timeout in (0, 600]")
    emit("burst", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
