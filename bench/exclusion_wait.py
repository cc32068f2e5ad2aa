"""Exclusion groups: how soon a held component starts once the deployment it waited on ends.

The whole product, each part its own process (the simulator delivering webhooks every 30 s, as Octopus does,
the intake, one `conductor worker` with its task watcher), with the rules' exclusion group
`[Database, Web API]`. Each round: a person deploys Database to Staging (held executing by a long step), a web
server is added to Staging; its redeploy plan's Web API step waits on that deployment (the bench checks that it
says so); the person then cancels it. The figure is from the Database task's `CompletedTime` to Web API's
deployment `Created` (both the simulator's clock). Baseline, by definition: without the watcher a held step is
looked at again by its plan's timer, every `task_check_seconds` (30 s here: 15 s on average, 30 s at worst).

    .venv/bin/python -m bench.exclusion_wait [--rounds 4]
"""

from __future__ import annotations

import argparse
import tempfile
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
    machine_info,
    new_web_server,
    percentile,
    python_env,
    quiet_logs,
    redis_space,
    say,
    server,
    wait_for,
    worker,
    write_rules,
)
from bench.reaction_latency import SUBSCRIBED, subscribe
from simulator.seed import CONDUCTOR_API_KEY, DATABASE_ID, SPACE_ID, STAGING_ID
from workers.environment_release import parse_time
from workers.plans import PlanStore

GROUP = "exclusion_groups:\n  - name: data-and-api\n    projects: [Database, Web API]\n"
HELD_SECONDS = 3600.0
QUICK_SECONDS = 0.2


def _clock(octopus: httpx.Client, step_seconds: float) -> None:
    octopus.put("/_simulator/clock", json={"StepDurationSeconds": step_seconds}).raise_for_status()


def _one_round(octopus: httpx.Client, plans: PlanStore, release_id: str, number: int) -> float:
    _clock(octopus, HELD_SECONDS)
    body = {"ReleaseId": release_id, "EnvironmentId": STAGING_ID, "Comments": "a person's own deployment"}
    database = octopus.post(f"/api/{SPACE_ID}/deployments", json=body)
    database.raise_for_status()
    task_id = database.json()["TaskId"]
    wait_for("Database to run", lambda: octopus.get(f"/api/tasks/{task_id}").json()["State"] == "Executing")
    machine = octopus.post(MACHINES_PATH, json=new_web_server(f"stg-web-excl-{number}"))
    machine.raise_for_status()
    machine_id = machine.json()["Id"]

    def held_plan() -> Any:
        for plan in plans.recent(20):
            if machine_id in plan.machine_ids:
                step = next(step for step in plan.steps if step.project == "Web API")
                if step.status == "pending" and "exclusion group" in (step.reason or ""):
                    return plan
        return None

    plan = wait_for("the Web API step to wait on Database", held_plan)
    _clock(octopus, QUICK_SECONDS)
    octopus.post(f"/api/tasks/{task_id}/cancel").raise_for_status()

    def web_api_created() -> Any:
        found = plans.load(plan.id)
        step = next(step for step in found.steps if step.project == "Web API") if found else None
        return step.deployment_id if step is not None else None

    deployment_id = wait_for("Web API's deployment", web_api_created)
    created = parse_time(octopus.get(f"/api/{SPACE_ID}/deployments/{deployment_id}").json()["Created"])
    completed = parse_time(octopus.get(f"/api/tasks/{task_id}").json()["CompletedTime"])
    if created is None or completed is None:
        raise RuntimeError("the simulator gave no Created or CompletedTime")
    wait_for("the plan to end", lambda: (found := plans.load(plan.id)) is not None and found.status != "running")
    return (created - completed).total_seconds()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say(f"exclusion wait: {args.rounds} rounds, delivery every 30 s")
    with tempfile.TemporaryDirectory(prefix="bench-excl-") as tmp, redis_space(args.redis_url) as (connection, keys):
        directory = Path(tmp)
        rules = write_rules(directory / "rules.yaml", window=0, task_check=30)
        rules.write_text(rules.read_text() + GROUP)
        options = ["--delivery-interval", "30", "--queue-delay", "0.2", "--step-duration", str(QUICK_SECONDS)]
        with server(
            "simulator", env=python_env(), log=directory / "sim.log", options=options, ready_path="/api"
        ) as sim:
            env = conductor_env(
                redis_url=args.redis_url, keys=keys, rules=rules, octopus_url=sim.url, octopus_api_key=CONDUCTOR_API_KEY
            )
            with (
                server("intake", env=env, log=directory / "intake.log") as intake,
                worker(env, directory / "worker.log"),
                admin(sim.url) as octopus,
            ):
                subscribe(octopus, intake.url, SUBSCRIBED)
                release = octopus.get(f"/api/{SPACE_ID}/projects/{DATABASE_ID}/releases/2021.1.0.1").json()["Id"]
                plans = PlanStore(connection, keys.prefix)
                gaps = []
                for number in range(args.rounds):
                    gap = _one_round(octopus, plans, release, number)
                    gaps.append(gap)
                    say(f"  round {number + 1}: Database ended → Web API created {gap:.2f} s")
    figures = {
        "gaps_s": [round(gap, 3) for gap in gaps],
        "p50_s": round(percentile(gaps, 0.5), 3),
        "max_s": round(max(gaps), 3),
        "timer_baseline_mean_s": 15.0,
        "timer_baseline_max_s": 30.0,
        "machine": machine_info(),
    }
    say(f"p50 {figures['p50_s']} s, max {figures['max_s']} s; the plan's 30 s timer alone: 15 s mean, 30 s worst")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("bench.exclusion_wait", __doc__)
    parser.add_argument("--rounds", type=int, default=4, help="held components measured (default 4)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    quiet_logs()
    emit("exclusion_wait", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
