"""Issue 15's two timings through the whole product: the relay of a watched task's manual intervention, and
the makespan of a 12-component promotion.

Each part its own process: the simulator (webhooks in batches every `--delivery-interval` s, 30 as Octopus),
the intake and one `conductor worker` with its task watcher. Times are the simulator's audit events'
`Occurred` (one clock, this machine's).

`relay`: new Production web servers, one at a time; each gets a redeploy plan of Web API then Web UI, and
each of those deployments raises "QA approval" and "Web Admins approval", which the relay answers with the
approvals people gave those releases before. Per interruption: its `ManualInterventionInterruptionRaised` to
its `InterruptionSubmitted`, reported apart for the first of a task and for the one raised right after it
was answered. Baseline in the same run: the same raise to the moment the simulator delivered
that event's webhook (`/_simulator/deliveries`), before which a webhook-only conductor cannot act.

`makespan`: 12 projects with one web-server step each, a release of each, and a parent project whose process
is "Plan the release" then "Deploy the components" (manual, owned by Release Management) are created
through the REST API, with a rules file naming them; every step takes `--step-duration` s (2). The parent is
deployed to Development (the lifecycle's first phase, so each component's newest release is taken); the
makespan is from its "Deploy the components" raised to that step's submission. Target: 12 x 2 s + 12 x 1 s.

    .venv/bin/python -m bench.promotion_timing relay [--machines 3]
    .venv/bin/python -m bench.promotion_timing makespan [--components 12] [--step-duration 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    DEFAULT_REDIS_URL,
    MACHINES_PATH,
    RULES,
    Server,
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
)
from bench.reaction_latency import subscribe
from bench.task_watch import _deployments, _new_deployment, _project_id
from simulator.seed import (
    CONDUCTOR_API_KEY,
    DEFAULT_LIFECYCLE_ID,
    DEVELOPMENT_ID,
    PRODUCTION_ID,
    RELEASE_MANAGEMENT_TEAM_ID,
    SPACE_ID,
    WEB_ROLE,
)
from workers.dispatch import SUBSCRIPTION_CATEGORIES
from workers.environment_release import parse_time

RAISED, SUBMITTED = "ManualInterventionInterruptionRaised", "InterruptionSubmitted"
RELAYED_STEPS = ("QA approval", "Web Admins approval")
APPROVALS = {"look_again_seconds": 0.5, "look_again_max_seconds": 1, "keep_looking_seconds": 60}
PLAN_STEP, DEPLOY_STEP = "Plan the release", "Deploy the components"
Doc = dict[str, Any]


@contextmanager
def product(args: argparse.Namespace, rules_text: str, step_duration: float) -> Iterator[tuple[Server, httpx.Client]]:
    """The simulator, the intake and one worker, subscribed to what the conductor handles."""
    with tempfile.TemporaryDirectory(prefix="bench-promotion-") as tmp, redis_space(args.redis_url) as (_, keys):
        directory = Path(tmp)
        rules = directory / "rules.yaml"
        rules.write_text(rules_text)
        options = ["--delivery-interval", str(args.delivery_interval), "--queue-delay", "0.2"]
        options += ["--step-duration", str(step_duration)]
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
                subscribe(octopus, intake.url, SUBSCRIPTION_CATEGORIES)
                yield sim, octopus


def occurred(octopus: httpx.Client, regarding: str, category: str) -> tuple[datetime, str]:
    """When the (first) event of `category` regarding a document occurred, and its id; waits for it."""
    params = {"regarding": regarding, "eventCategories": category}
    items = wait_for(f"{category} of {regarding}", lambda: octopus.get("/api/events", params=params).json()["Items"])
    when = parse_time(items[-1]["Occurred"])
    assert when is not None
    return when, str(items[-1]["Id"])


def pending(octopus: httpx.Client, deployment_id: str, title: str) -> Doc:
    def probe() -> Doc | None:
        items = octopus.get(f"/api/{SPACE_ID}/interruptions", params={"regarding": deployment_id}).json()["Items"]
        return next((item for item in items if item["Title"] == title), None)

    found: Doc = wait_for(f"'{title}' in {deployment_id}", probe)
    return found


# ---------------------------------------------------------------------------------------------- relay


def relay_times(octopus: httpx.Client, deployment_id: str) -> list[tuple[float, float]]:
    """Per relayed interruption of a deployment: raised → submitted, and raised → its webhook delivered."""
    rows = []
    for title in RELAYED_STEPS:
        interruption = pending(octopus, deployment_id, title)
        raised, event_id = occurred(octopus, interruption["Id"], RAISED)
        submitted, _ = occurred(octopus, interruption["Id"], SUBMITTED)

        def delivered(event: str = event_id) -> str | None:
            attempts = octopus.get("/_simulator/deliveries").json()
            return next((item["At"] for item in attempts if item["EventId"] == event and item["Delivered"]), None)

        webhook = parse_time(wait_for(f"the webhook of {event_id}", delivered, timeout=120))
        assert webhook is not None
        rows.append(((submitted - raised).total_seconds(), (webhook - raised).total_seconds()))
    return rows


def measure_relay(args: argparse.Namespace) -> dict[str, Any]:
    say(f"raised → relayed: {args.machines} Production web servers, delivery every {args.delivery_interval} s")
    rules = RULES.format(window=0, task_check=30, triggers="MachineAdded").replace(
        "    approvals:\n      enabled: false\n", f"    approvals: {json.dumps(APPROVALS)}\n"
    )
    relayed: list[float] = []
    later: list[float] = []  # raised in a task right after its earlier interruption was answered
    webhooks: list[float] = []
    with product(args, rules, args.step_duration) as (_, octopus):
        projects = [_project_id(octopus, name) for name in ("Web API", "Web UI")]
        for number in range(args.machines):
            before = [{d["Id"] for d in _deployments(octopus, project, PRODUCTION_ID)} for project in projects]
            body = new_web_server(f"prod-web-relay-{number}", PRODUCTION_ID)
            octopus.post(MACHINES_PATH, json=body).raise_for_status()
            for project, seen in zip(projects, before, strict=True):
                deployment = _new_deployment(octopus, project, PRODUCTION_ID, seen)
                for index, (relay, webhook) in enumerate(relay_times(octopus, deployment["Id"])):
                    (later if index else relayed).append(relay)
                    webhooks.append(webhook)
                    say(f"  machine {number + 1}, {deployment['Id']}: relayed {relay:.2f} s, webhook {webhook:.2f} s")
                wait_for(f"{deployment['Id']} to finish", lambda d=deployment: _task(octopus, d)["IsCompleted"])
    both = relayed + later
    figures = {
        "first_in_task_s": [round(value, 3) for value in relayed],
        "after_an_answer_s": [round(value, 3) for value in later],
        "p50_s": round(percentile(both, 0.5), 3),
        "p99_s": round(percentile(both, 0.99), 3),
        "first_in_task_p50_s": round(percentile(relayed, 0.5), 3),
        "after_an_answer_p50_s": round(percentile(later, 0.5), 3),
        "webhook_p50_s": round(percentile(webhooks, 0.5), 3),
        "webhook_max_s": round(max(webhooks), 3),
        "delivery_interval_s": args.delivery_interval,
        "machine": machine_info(),
    }
    say(
        f"raised → relayed p50 {figures['p50_s']} s, p99 {figures['p99_s']} s ({len(both)} interruptions): "
        f"the first in its task p50 {figures['first_in_task_p50_s']} s, one raised after an answer in the same "
        f"task p50 {figures['after_an_answer_p50_s']} s; raised → webhook delivered p50 {figures['webhook_p50_s']} s"
    )
    return figures


def _task(octopus: httpx.Client, deployment: Doc) -> Doc:
    task: Doc = octopus.get(f"/api/tasks/{deployment['TaskId']}").json()
    return task


# ---------------------------------------------------------------------------------------------- makespan


def _manual(name: str) -> Doc:
    properties = {
        "Octopus.Action.Manual.Instructions": f"Release Conductor: {name}.",
        "Octopus.Action.Manual.ResponsibleTeamIds": RELEASE_MANAGEMENT_TEAM_ID,
        "Octopus.Action.Manual.BlockConcurrentDeployments": "False",
        "Octopus.Action.RunOnServer": "true",
    }
    action = {"Name": name, "ActionType": "Octopus.Manual", "Environments": [], "Properties": properties}
    return {"Name": name, "Properties": {}, "Actions": [action]}


def _deploy(name: str) -> Doc:
    properties = {"Octopus.Action.Package.PackageId": name.replace(" ", "."), "Octopus.Action.Package.FeedId": ""}
    action = {"Name": name, "ActionType": "Octopus.TentaclePackage", "Properties": properties}
    return {"Name": name, "Properties": {"Octopus.Action.TargetRoles": WEB_ROLE}, "Actions": [action]}


def new_project(octopus: httpx.Client, name: str, steps: list[Doc]) -> str:
    """A project in the default lifecycle with these steps and one release, 1.0.0; returns the release id."""
    body = {"Name": name, "ProjectGroupId": "ProjectGroups-1", "LifecycleId": DEFAULT_LIFECYCLE_ID}
    created = octopus.post(f"/api/{SPACE_ID}/projects", json=body)
    created.raise_for_status()
    project = created.json()
    path = f"/api/{SPACE_ID}/deploymentprocesses/{project['DeploymentProcessId']}"
    process = octopus.get(path).json()
    octopus.put(path, json={**process, "Steps": steps}).raise_for_status()
    release = octopus.post(f"/api/{SPACE_ID}/releases", json={"ProjectId": project["Id"], "Version": "1.0.0"})
    release.raise_for_status()
    return str(release.json()["Id"])


def makespan_rules(components: list[str], parent: str) -> str:
    listed = "".join(f"      - project: {name}\n" for name in components)
    return (
        f"orchestrations:\n  - name: makespan\n    space: Default\n    parent_project: {parent}\n"
        f"    components:\n{listed}    promotion:\n      task_check_seconds: 30\n"
    )


def measure_makespan(args: argparse.Namespace) -> dict[str, Any]:
    names = [f"Makespan component {number + 1}" for number in range(args.components)]
    parent_name = "Makespan orchestration"
    target = args.components * (args.step_duration + 1)
    say(
        f"makespan: {args.components} components at {args.step_duration} s each, delivery every "
        f"{args.delivery_interval} s (target {target:.0f} s)"
    )
    with product(args, makespan_rules(names, parent_name), args.step_duration) as (_, octopus):
        for name in names:
            new_project(octopus, name, [_deploy(name)])
        parent_release = new_project(octopus, parent_name, [_manual(PLAN_STEP), _manual(DEPLOY_STEP)])
        body = {"ReleaseId": parent_release, "EnvironmentId": DEVELOPMENT_ID}
        created = octopus.post(f"/api/{SPACE_ID}/deployments", json=body)
        created.raise_for_status()
        parent = created.json()
        step = pending(octopus, parent["Id"], DEPLOY_STEP)
        raised, _ = occurred(octopus, step["Id"], RAISED)
        answered, _ = occurred(octopus, step["Id"], SUBMITTED)
        task = wait_for(
            "the parent to finish", lambda: _task(octopus, parent)["IsCompleted"] and _task(octopus, parent)
        )
        components = [_deployments(octopus, _project_id(octopus, name), DEVELOPMENT_ID) for name in names]
        tasks = [_task(octopus, found[0]) for found in components if found]
    durations = [_seconds(t["StartTime"], t["CompletedTime"]) for t in tasks]
    first_start = min(parse_time(t["StartTime"]) or raised for t in tasks) if tasks else raised
    figures = {
        "components": args.components,
        "deployed": len(tasks),
        "parent_state": task["State"],
        "makespan_s": round((answered - raised).total_seconds(), 3),
        "target_s": target,
        "raised_to_first_start_s": round((first_start - raised).total_seconds(), 3),
        "first_start_to_answer_s": round((answered - first_start).total_seconds(), 3),
        "component_task_s": {"min": round(min(durations), 3), "max": round(max(durations), 3)} if durations else {},
        "delivery_interval_s": args.delivery_interval,
        "machine": machine_info(),
    }
    say(
        f"makespan {figures['makespan_s']} s for {len(tasks)} component deployments (target {target:.0f} s); "
        f"raised → first component started {figures['raised_to_first_start_s']} s, then "
        f"{figures['first_start_to_answer_s']} s to the answer; each component's task "
        f"{figures['component_task_s']} s; parent {task['State']}"
    )
    return figures


def _seconds(start: object, end: object) -> float:
    began, ended = parse_time(start), parse_time(end)
    if began is None or ended is None:
        raise RuntimeError(f"the simulator gave no StartTime or CompletedTime: {start!r}, {end!r}")
    return (ended - began).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("bench.promotion_timing", __doc__)
    parser.add_argument("what", choices=["relay", "makespan"])
    parser.add_argument("--machines", type=int, default=3, help="Production web servers for the relay (default 3)")
    parser.add_argument("--components", type=int, default=12, help="components of the makespan (default 12)")
    parser.add_argument("--step-duration", type=float, default=None, help="simulator s per step (relay 0.5, else 2)")
    parser.add_argument("--delivery-interval", type=float, default=30.0, help="webhook batches (default 30 s)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args(argv)
    if args.step_duration is None:
        args.step_duration = 0.5 if args.what == "relay" else 2.0
    quiet_logs()
    figures = measure_relay(args) if args.what == "relay" else measure_makespan(args)
    emit(f"promotion_{args.what}", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
