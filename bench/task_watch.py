"""The task watcher: the idle gap between components, and what watching costs Octopus.

`gap`: the whole product, each part its own process (the simulator delivering webhooks every 30 s, as
Octopus does, the intake, one `conductor worker` with its watcher). Web servers are added to Staging one
at a time; each gets a plan of Web API then Web UI. The gap is from Web API's task `CompletedTime` to Web
UI's deployment `Created` (both the simulator's clock, this machine's). Baseline in the same run: the step
template's way, one poll of the child task every 5 s from its deployment's creation; its gap is from the
same `CompletedTime` to the poll that first sees the task finished (a template would create the next
deployment then).

`calls`: the watcher in this process with its own counting client, against the simulator, for 1, 10 and
200 deployments in flight (created through the API, each held executing by a long step duration, each
the one step of a plan in Redis). Octopus calls per second over `--seconds`. Baselines: the step template
polls each child every 5 s (N / 5 calls per second, by its definition), and the conductor's plan timers
before the watcher read each task every `task_check_seconds` (30 s: N / 30).

    .venv/bin/python -m bench.task_watch gap [--machines 6]
    .venv/bin/python -m bench.task_watch calls [--counts 1,10,200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis

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
from simulator.seed import CONDUCTOR_API_KEY, DEVELOPMENT_ID, SPACE_ID
from workers.environment_release import parse_time
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plans import Plan, PlanStep, PlanStore
from workers.rules import parse_rules
from workers.runner import worker_context
from workers.task_watcher import TaskWatcher

TEMPLATE_POLL_SECONDS = 5.0
TIMER_SECONDS = 30.0


def _deployments(octopus: httpx.Client, project: str, environment: str) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"projects": project, "environments": environment, "take": 100}
    items: list[dict[str, Any]] = octopus.get(f"/api/{SPACE_ID}/deployments", params=params).json()["Items"]
    return items


def _project_id(octopus: httpx.Client, name: str) -> str:
    return str(next(p["Id"] for p in octopus.get(f"/api/{SPACE_ID}/projects/all").json() if p["Name"] == name))


def _template_poll(sim_url: str, deployment: dict[str, Any], seen: dict[str, float]) -> None:
    """The step template's loop for one child: every 5 s after the deployment, read its task."""
    created = parse_time(deployment["Created"])
    assert created is not None
    start = created.timestamp()
    with admin(sim_url) as octopus:
        for poll in range(1, 1000):
            time.sleep(max(start + poll * TEMPLATE_POLL_SECONDS - time.time(), 0.0))
            task = octopus.get(f"/api/tasks/{deployment['TaskId']}").json()
            if task["IsCompleted"]:
                seen[deployment["Id"]] = time.time()
                return


def _new_deployment(octopus: httpx.Client, project: str, environment: str, before: set[str]) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        return next((d for d in _deployments(octopus, project, environment) if d["Id"] not in before), None)

    found: dict[str, Any] = wait_for(f"a new deployment of {project}", probe)
    return found


def _one_plan(
    octopus: httpx.Client, sim_url: str, web_api: str, web_ui: str, staging: str, name: str
) -> tuple[float, float]:
    """One new web server: the watcher's gap and the template's, from Web API's completion."""
    before_api = {d["Id"] for d in _deployments(octopus, web_api, staging)}
    before_ui = {d["Id"] for d in _deployments(octopus, web_ui, staging)}
    octopus.post(MACHINES_PATH, json=new_web_server(name)).raise_for_status()
    api = _new_deployment(octopus, web_api, staging, before_api)
    seen: dict[str, float] = {}
    poller = threading.Thread(target=_template_poll, args=(sim_url, api, seen), daemon=True)
    poller.start()
    ui = _new_deployment(octopus, web_ui, staging, before_ui)
    poller.join(120)
    completed = parse_time(octopus.get(f"/api/tasks/{api['TaskId']}").json()["CompletedTime"])
    created = parse_time(ui["Created"])
    if completed is None or created is None:
        raise RuntimeError("the simulator gave no CompletedTime or Created")
    wait_for("Web UI to finish", lambda: octopus.get(f"/api/tasks/{ui['TaskId']}").json()["IsCompleted"])
    return (created - completed).total_seconds(), seen[api["Id"]] - completed.timestamp()


def measure_gap(args: argparse.Namespace) -> dict[str, Any]:
    say(f"gap between components: {args.machines} Staging web servers one after the other, delivery every 30 s")
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp, redis_space(args.redis_url) as (_, keys):
        directory = Path(tmp)
        rules = write_rules(directory / "rules.yaml", window=0, task_check=30)
        options = ["--delivery-interval", "30", "--queue-delay", "0.2", "--step-duration", str(args.step_duration)]
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
                web_api, web_ui = _project_id(octopus, "Web API"), _project_id(octopus, "Web UI")
                staging = new_web_server("x")["EnvironmentIds"][0]
                gaps, template_gaps = [], []
                for number in range(args.machines):
                    gap, template = _one_plan(octopus, sim.url, web_api, web_ui, staging, f"stg-web-gap-{number}")
                    gaps.append(gap)
                    template_gaps.append(template)
                    say(f"  machine {number + 1}: watcher gap {gap:.2f} s, template (5 s poll) {template:.2f} s")
    figures = {
        "gaps_s": [round(g, 3) for g in gaps],
        "p50_s": round(percentile(gaps, 0.5), 3),
        "p99_s": round(percentile(gaps, 0.99), 3),
        "max_s": round(max(gaps), 3),
        "template_gaps_s": [round(g, 3) for g in template_gaps],
        "template_p50_s": round(percentile(template_gaps, 0.5), 3),
        "template_max_s": round(max(template_gaps), 3),
        "machine": machine_info(),
    }
    say(
        f"gap p50 {figures['p50_s']} s, p99 {figures['p99_s']} s, max {figures['max_s']} s; "
        f"template p50 {figures['template_p50_s']} s, max {figures['template_max_s']} s"
    )
    return figures


def _in_flight(octopus: httpx.Client, connection: redis.Redis, keys: RedisKeys, count: int) -> list[Plan]:
    """`count` deployments of Web API to Development, each the one deploying step of a plan in Redis."""
    project = _project_id(octopus, "Web API")
    release = octopus.get(f"/api/{SPACE_ID}/projects/{project}/releases", params={"take": 1}).json()["Items"][0]
    plans = []
    store = PlanStore(connection, keys.prefix)
    for number in range(count):
        body = {"ReleaseId": release["Id"], "EnvironmentId": DEVELOPMENT_ID, "Comments": f"bench {number}"}
        created = octopus.post(f"/api/{SPACE_ID}/deployments", json=body)
        created.raise_for_status()
        deployment = created.json()
        step = PlanStep(
            project="Web API",
            status="deploying",
            project_id=project,
            deployment_id=deployment["Id"],
            task_id=deployment["TaskId"],
        )
        plan = Plan(
            id=f"plan-bench-{count}-{number}",
            orchestration="sample-app",
            space_id=SPACE_ID,
            environment_id=DEVELOPMENT_ID,
            tenant_id=None,
            machine_ids=[],
            steps=[step],
        )
        store.save(plan)
        plans.append(plan)
    return plans


def measure_calls(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(item) for item in args.counts.split(",")]
    say(f"watch cost: {counts} deployments in flight, {args.seconds} s each")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        directory = Path(tmp)
        # Tasks stay executing for the whole measurement: the watcher's most frequent pace (no history).
        options = ["--delivery-interval", "3600", "--queue-delay", "0", "--step-duration", "3600"]
        with server(
            "simulator", env=python_env(), log=directory / "sim.log", options=options, ready_path="/api"
        ) as sim:
            for count in counts:
                with redis_space(args.redis_url) as (connection, keys), admin(sim.url) as octopus:
                    _in_flight(octopus, connection, keys, count)
                    rules = write_rules(directory / "rules.yaml", window=0, task_check=30)
                    client = OctopusClient(base_url=sim.url, api_key=CONDUCTOR_API_KEY)
                    context = worker_context(
                        connection=connection, keys=keys, rules=parse_rules(rules.read_text()), octopus=client
                    )
                    watcher = TaskWatcher(context, name="bench-watcher")
                    started = time.monotonic()
                    while time.monotonic() - started < args.seconds:
                        time.sleep(watcher.step())
                    elapsed = time.monotonic() - started
                    calls = client.calls.total()
                    rows.append(
                        {
                            "in_flight": count,
                            "calls": calls,
                            "by_route": dict(client.calls),
                            "calls_per_s": round(calls / elapsed, 3),
                            "template_calls_per_s": round(count / TEMPLATE_POLL_SECONDS, 3),
                            "timers_calls_per_s": round(count / TIMER_SECONDS, 3),
                        }
                    )
                    say(
                        f"  {count:4d} in flight: {calls} calls in {elapsed:.1f} s = {calls / elapsed:.2f}/s "
                        f"(template {count / TEMPLATE_POLL_SECONDS:.1f}/s, 30 s timers {count / TIMER_SECONDS:.2f}/s)"
                    )
                    client.close()
    return {"rows": rows, "machine": machine_info()}


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("bench.task_watch", __doc__)
    parser.add_argument("what", choices=["gap", "calls"])
    parser.add_argument("--machines", type=int, default=6, help="plans measured for the gap (default 6)")
    parser.add_argument("--step-duration", type=float, default=0.5, help="simulator seconds per step (default 0.5)")
    parser.add_argument("--counts", default="1,10,200", help="deployments in flight, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="watching time per count (default 10)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    quiet_logs()
    figures = measure_gap(args) if args.what == "gap" else measure_calls(args)
    emit(f"task_watch_{args.what}", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
