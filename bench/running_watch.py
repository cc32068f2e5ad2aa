"""What watching every deployment Octopus runs costs it (stuck deployments, exclusion groups).

The task watcher in this process with its own counting client, against the simulator, for 1, 10 and 200
deployments executing at once, made through the API as a person would (none of them the conductor's: no plan
in Redis). Each is a deployment of a bench project (one server step, held executing by a long step duration)
to one of the four environments, so that none queues behind another. The rules cover every bench project with
`stuck_after_seconds` (`--limit`, default 2 s, which gives the watcher's fastest pace, a look a second), and
`cancel_stuck` off: every deployment is tallied at each look and reported once past the limit. Octopus calls
per second over `--seconds`, after a warm-up of 4 s (the name cache filled, each deployment's place read).
Baseline in the same run: reading each running deployment's task every 5 s, as the step template polls its
children (N / 5 calls per second, by its definition).

    .venv/bin/python -m bench.running_watch [--counts 1,10,200] [--seconds 10] [--limit 2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import structlog

from bench.harness import (
    DEFAULT_REDIS_URL,
    admin,
    command_parser,
    emit,
    machine_info,
    python_env,
    quiet_logs,
    redis_space,
    say,
    server,
)
from simulator.seed import CONDUCTOR_API_KEY, DEVELOPMENT_ID, PRODUCTION_ID, SPACE_ID, STAGING_ID, TEST_ID
from workers.octopus import OctopusClient
from workers.rules import parse_rules
from workers.runner import worker_context
from workers.task_watcher import TaskWatcher

ENVIRONMENTS = (DEVELOPMENT_ID, TEST_ID, STAGING_ID, PRODUCTION_ID)
TEMPLATE_POLL_SECONDS = 5.0
# Before counting: the name cache fills, every deployment's place is read once, the limit is passed.
WARM_UP_SECONDS = 4.0


def _bench_projects(octopus: httpx.Client, count: int) -> list[dict[str, Any]]:
    """`count` projects that deploy to any environment (a lifecycle with no phases), one server step each."""
    lifecycle = octopus.post(f"/api/{SPACE_ID}/lifecycles", json={"Name": f"Bench anywhere {count}", "Phases": []})
    lifecycle.raise_for_status()
    group = octopus.get(f"/api/{SPACE_ID}/projectgroups/all").json()[0]["Id"]
    projects = []
    for number in range(count):
        body = {"Name": f"Bench {count}-{number}", "ProjectGroupId": group, "LifecycleId": lifecycle.json()["Id"]}
        created = octopus.post(f"/api/{SPACE_ID}/projects", json=body)
        created.raise_for_status()
        project = created.json()
        process = octopus.get(f"/api/{SPACE_ID}/deploymentprocesses/{project['DeploymentProcessId']}").json()
        process["Steps"] = [
            {
                "Name": "Run",
                "Properties": {},
                "Actions": [{"Name": "Run", "ActionType": "Octopus.Script", "Properties": {}}],
            }
        ]
        octopus.put(f"/api/{SPACE_ID}/deploymentprocesses/{process['Id']}", json=process).raise_for_status()
        release = octopus.post(f"/api/{SPACE_ID}/releases", json={"ProjectId": project["Id"], "Version": "1.0.0"})
        release.raise_for_status()
        projects.append({**project, "ReleaseId": release.json()["Id"]})
    return projects


def _deploy(octopus: httpx.Client, projects: list[dict[str, Any]], count: int) -> None:
    """`count` deployments, each to its own (project, environment): every one executes at once."""
    for number in range(count):
        project = projects[number // len(ENVIRONMENTS)]
        body = {"ReleaseId": project["ReleaseId"], "EnvironmentId": ENVIRONMENTS[number % len(ENVIRONMENTS)]}
        octopus.post(f"/api/{SPACE_ID}/deployments", json=body).raise_for_status()


def _executing(octopus: httpx.Client, count: int) -> int:
    params: dict[str, str | int] = {"name": "Deploy", "states": "Executing", "take": 1000}
    deadline = time.monotonic() + 30
    while True:
        running = int(octopus.get("/api/tasks", params=params).json()["TotalResults"])
        if running >= count or time.monotonic() > deadline:
            return running
        time.sleep(0.1)


def _watch(watcher: TaskWatcher, seconds: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(watcher.step())


def _rules(projects: list[dict[str, Any]], limit: int) -> str:
    components = "".join(f"      - project: {project['Name']}\n" for project in projects)
    return (
        "orchestrations:\n  - name: bench\n    space: Default\n    components:\n"
        f"{components}    approvals:\n      enabled: false\n    stuck_after_seconds: {limit}\n"
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(item) for item in args.counts.split(",")]
    say(f"running-deployments watch: {counts} executing at once, {args.seconds} s each, limit {args.limit} s")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-running-") as tmp:
        options = ["--delivery-interval", "3600", "--queue-delay", "0", "--step-duration", "3600"]
        for count in counts:
            # A fresh simulator per count: only this count's deployments run.
            with (
                server(
                    "simulator", env=python_env(), log=Path(tmp) / "sim.log", options=options, ready_path="/api"
                ) as sim,
                redis_space(args.redis_url) as (connection, keys),
                admin(sim.url) as octopus,
            ):
                projects = _bench_projects(octopus, -(-count // len(ENVIRONMENTS)))
                _deploy(octopus, projects, count)
                running = _executing(octopus, count)
                client = OctopusClient(base_url=sim.url, api_key=CONDUCTOR_API_KEY)
                rules = parse_rules(_rules(projects, args.limit))
                context = worker_context(connection=connection, keys=keys, rules=rules, octopus=client)
                watcher = TaskWatcher(context, name="bench-watcher")
                _watch(watcher, WARM_UP_SECONDS)  # the name cache fills, every place is read once
                client.calls.clear()
                looks_before = watcher.running.looks
                started = time.monotonic()
                _watch(watcher, args.seconds)
                elapsed = time.monotonic() - started
                calls = client.calls.total()
                row = {
                    "executing": running,
                    "calls": calls,
                    "by_route": dict(client.calls),
                    "looks": watcher.running.looks - looks_before,
                    "calls_per_s": round(calls / elapsed, 3),
                    "per_task_poll_calls_per_s": round(running / TEMPLATE_POLL_SECONDS, 3),
                }
                rows.append(row)
                say(
                    f"  {running:4d} executing: {calls} calls in {elapsed:.1f} s = {calls / elapsed:.2f}/s "
                    f"({watcher.running.looks - looks_before} looks; {dict(client.calls)}); polling each every 5 s: "
                    f"{running / TEMPLATE_POLL_SECONDS:.1f}/s"
                )
                client.close()
    return {"rows": rows, "machine": machine_info()}


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("bench.running_watch", __doc__)
    parser.add_argument("--counts", default="1,10,200", help="deployments executing at once, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="watching time per count (default 10)")
    parser.add_argument("--limit", type=int, default=2, help="stuck_after_seconds of the bench rules (default 2)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    quiet_logs()
    # Each bench deployment is reported stuck once (a warning): not this output's business.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    emit("running_watch", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
