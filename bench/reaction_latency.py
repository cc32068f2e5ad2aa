"""Reaction latency: from the simulator recording `MachineAdded` to the first deployment created for it.

The whole product, each part its own process on this machine: the simulator (subscription delivery
interval 0: a delivery pass starts as soon as an event is written; tasks queue 0 s, steps 0.02 s), the
intake (`bench.serve_app intake`, as `conductor serve`), and one `conductor worker`. Rules: the 4 sample
components, `group_window_seconds: 0`, triggered by MachineAdded. A subscription delivers MachineAdded,
DeploymentSucceeded and DeploymentFailed to the intake.

`--events` new web servers are added to Staging one at a time; the next is added once the previous plan
has finished, so that plans never wait on each other's locks. For each: the MachineAdded event's
`Occurred` and the first deployment's `Created` (both the simulator's clock, which is this machine's clock,
in milliseconds), and from RQ's job hash where the time went: delivery and intake (Occurred to the job's
`enqueued_at`), queue (to `started_at`), handling (to the deployment's `Created`). `--warmup` machines go
first and are not counted (the worker's caches fill on its first event).

    .venv/bin/python -m bench.reaction_latency [--events 100] [--warmup 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.harness import (
    DEFAULT_REDIS_URL,
    HEADER,
    MACHINES_PATH,
    SECRET,
    admin,
    command_parser,
    conductor_env,
    emit,
    new_web_server,
    percentile,
    python_env,
    redis_space,
    say,
    server,
    tail,
    worker,
    write_rules,
)
from service.octopus_subscription import create_subscription
from simulator.seed import CONDUCTOR_API_KEY, SPACE_ID, STAGING_ID
from workers.keys import RedisKeys
from workers.plans import Plan, PlanStore
from workers.redis_client import as_text

SUBSCRIBED = ["MachineAdded", "DeploymentSucceeded", "DeploymentFailed"]


def subscribe(octopus: httpx.Client, intake_url: str, categories: Sequence[str]) -> None:
    create_subscription(
        octopus, space_id=SPACE_ID, intake_url=intake_url, header=HEADER, secret=SECRET, categories=categories
    )


def add_machine(octopus: httpx.Client, name: str, environment_id: str = STAGING_ID) -> str:
    created = octopus.post(MACHINES_PATH, json=new_web_server(name, environment_id))
    created.raise_for_status()
    machine_id: str = created.json()["Id"]
    return machine_id


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def plan_for(store: PlanStore, machine_id: str) -> Plan | None:
    return next((plan for plan in store.recent(20) if machine_id in plan.machine_ids), None)


def wait_plan_finished(store: PlanStore, machine_id: str, timeout: float, log: Path) -> Plan:
    deadline = time.monotonic() + timeout
    while True:
        plan = plan_for(store, machine_id)
        if plan is not None and plan.status != "running":
            return plan
        if time.monotonic() > deadline:
            state = plan.model_dump_json() if plan else "no plan"
            raise RuntimeError(f"{machine_id}: the plan did not finish within {timeout} s: {state}\n{tail(log)}")
        time.sleep(0.005)


def job_times(connection: redis.Redis, keys: RedisKeys, event_id: str) -> tuple[datetime | None, datetime | None]:
    raw = connection.hmget(f"rq:job:{keys.job_id(event_id)}", ["enqueued_at", "started_at"])
    return tuple(  # type: ignore[return-value]
        datetime.fromisoformat(as_text(value).replace("Z", "+00:00")) if value else None for value in raw
    )


def one_machine(
    octopus: httpx.Client, store: PlanStore, connection: redis.Redis, keys: RedisKeys, name: str, log: Path
) -> dict[str, Any]:
    machine_id = add_machine(octopus, name)
    plan = wait_plan_finished(store, machine_id, 60, log)
    first = next((step for step in plan.steps if step.deployment_id), None)
    if first is None:
        raise RuntimeError(f"{machine_id}: the plan created no deployment: {plan.report}")
    deployment = octopus.get(f"/api/{SPACE_ID}/deployments/{first.deployment_id}").json()
    event = octopus.get("/api/events", params={"regarding": machine_id, "eventCategories": "MachineAdded"}).json()
    occurred = iso(event["Items"][0]["Occurred"])
    created = iso(deployment["Created"])
    enqueued, started = job_times(connection, keys, event["Items"][0]["Id"])
    row = {
        "machine": machine_id,
        "deployment": first.deployment_id,
        "latency_ms": (created - occurred).total_seconds() * 1000,
    }
    if enqueued is not None and started is not None:
        row["to_enqueued_ms"] = (enqueued - occurred).total_seconds() * 1000
        row["queued_ms"] = (started - enqueued).total_seconds() * 1000
        row["handling_ms"] = (created - started).total_seconds() * 1000
    return row


def summary(rows: Sequence[dict[str, Any]], field: str) -> dict[str, float]:
    values = [row[field] for row in rows if field in row]
    return {
        "p50": round(percentile(values, 0.5), 1),
        "p90": round(percentile(values, 0.9), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values, default=float("nan")), 1),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say(f"reaction latency: {args.events} MachineAdded events (after {args.warmup} warm-up), one worker")
    with (
        tempfile.TemporaryDirectory(prefix="bench-reaction-") as tmp,
        redis_space(args.redis_url) as (connection, keys),
    ):
        directory = Path(tmp)
        rules = write_rules(directory / "rules.yaml", window=0, task_check=30)
        sim_options = ["--delivery-interval", "0", "--queue-delay", "0", "--step-duration", str(args.step_duration)]
        with server(
            "simulator", env=python_env(), log=directory / "simulator.log", options=sim_options, ready_path="/api"
        ) as sim:
            env = conductor_env(
                redis_url=args.redis_url,
                keys=keys,
                rules=rules,
                octopus_url=sim.url,
                octopus_api_key=CONDUCTOR_API_KEY,
            )
            with (
                server("intake", env=env, log=directory / "intake.log") as intake,
                worker(env, directory / "worker.log"),
                admin(sim.url) as octopus,
            ):
                subscribe(octopus, intake.url, SUBSCRIBED)
                store = PlanStore(connection, keys.prefix)
                for number in range(args.warmup):
                    one_machine(octopus, store, connection, keys, f"stg-web-warm-{number}", directory / "worker.log")
                rows = []
                started = time.perf_counter()
                for number in range(args.events):
                    row = one_machine(
                        octopus, store, connection, keys, f"stg-web-lat-{number}", directory / "worker.log"
                    )
                    rows.append(row)
                elapsed = time.perf_counter() - started
    figures: dict[str, Any] = {
        "events": len(rows),
        "step_duration_s": args.step_duration,
        "elapsed_s": round(elapsed, 1),
        "latency_ms": summary(rows, "latency_ms"),
        "breakdown_p50_ms": {
            "delivery_and_intake": summary(rows, "to_enqueued_ms")["p50"],
            "queue": summary(rows, "queued_ms")["p50"],
            "handling_to_first_deployment": summary(rows, "handling_ms")["p50"],
        },
        "breakdown_p99_ms": {
            "delivery_and_intake": summary(rows, "to_enqueued_ms")["p99"],
            "queue": summary(rows, "queued_ms")["p99"],
            "handling_to_first_deployment": summary(rows, "handling_ms")["p99"],
        },
    }
    latency = figures["latency_ms"]
    say(
        f"MachineAdded Occurred -> first deployment Created over {len(rows)} events: p50 {latency['p50']} ms, "
        f"p90 {latency['p90']} ms, p99 {latency['p99']} ms, max {latency['max']} ms"
    )
    p50, p99 = figures["breakdown_p50_ms"], figures["breakdown_p99_ms"]
    say(
        f"  where it goes (p50 / p99): delivery + intake {p50['delivery_and_intake']} / "
        f"{p99['delivery_and_intake']} ms, "
        f"queue {p50['queue']} / {p99['queue']} ms, worker to first deployment "
        f"{p50['handling_to_first_deployment']} / {p99['handling_to_first_deployment']} ms"
    )
    say(f"  target p50 < 50 ms: {'reached' if latency['p50'] < 50 else 'not reached'}")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.reaction_latency", __doc__)
    parser.add_argument("--events", type=int, default=100, help="machines measured (default 100)")
    parser.add_argument("--warmup", type=int, default=3, help="machines added first, not measured (default 3)")
    parser.add_argument("--step-duration", type=float, default=0.02, help="simulator seconds per step (default 0.02)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    if not 1 <= args.events <= 1000 or not 0 <= args.warmup <= 20:
        parser.error("--events must be in [1, 1000] and --warmup in [0, 20]")
    emit("reaction_latency", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
