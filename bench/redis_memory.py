"""Redis memory: bytes per record and per event, and the steady-state size for a stated daily volume.

The whole product writes the records (simulator, intake and one `conductor worker`, each a process of its
own; the simulator's subscription delivers its events to the intake): first `--plans` new Production web
servers, one after the other, each a redeploy plan of 4 steps with 2 deployments and 4 approvals relayed
(rules: the 4 sample components, approvals on); then `--events` deployment outcomes (DeploymentFailed and
DeploymentSucceeded, alternately, built from the Octopus payloads in tests/fixtures/webhooks/ with ids of
their own), POSTed to the intake as Octopus does. Once the worker has finished every job, Redis's
`MEMORY USAGE` (exact: SAMPLES 0) is summed over the keys of each kind, and each kind's TTL is read back.

Steady state = sum over kinds of bytes x daily count x days kept: the dedupe window for dedupe keys, RQ's
result_ttl for finished jobs, the retention for every record and index entry. The same volume with no
retention, kept for a year, is printed beside it. An index entry is priced at the deployment outcomes
index's cost per entry (a sorted set that large is a skiplist, as every index is at these volumes).

The run starts its own `redis-server` (loopback, free port, no persistence), so that Redis's own count
can be printed beside `MEMORY USAGE` (which leaves out the key tables' entries and slots): the growth of
`used_memory` per deployment outcome while those were stored and handled. With `--redis-url` it runs in
that Redis instead, under a prefix of its own, and prints `MEMORY USAGE` only.

    .venv/bin/python -m bench.redis_memory [--events 1000] [--plans 2] [--outcomes-per-day 25000] ...
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from bench.harness import (
    BENCH_DIR,
    DEFAULT_REDIS_URL,
    HEADER,
    MACHINES_PATH,
    RULES,
    SECRET,
    admin,
    command_parser,
    conductor_env,
    emit,
    free_port,
    new_web_server,
    python_env,
    redis_space,
    say,
    server,
    tail,
    worker,
)
from bench.reaction_latency import subscribe
from bench.redis_steady_state import DAY, Kind, human, measure_keys, per_event, render, steady_state
from simulator.seed import CONDUCTOR_API_KEY, PRODUCTION_ID
from workers.plans import Plan, PlanStore
from workers.retention import DEFAULT_SECONDS

FIXTURES = BENCH_DIR.parent / "tests" / "fixtures" / "webhooks"
# (fixture, its Event.Id, its deployment, its task): each id is replaced by one of the event's own.
OUTCOME_PAYLOADS = (
    ("deployment_failed_2023.json", "Events-1158436", "Deployments-12519", "ServerTasks-569388"),
    ("deployment_succeeded_tenanted.json", "Events-90511", "Deployments-310", "ServerTasks-2150"),
)
# Far above the simulator's own ids, so that no event or deployment of the bench is one of the seed's.
FIRST_NUMBER = 70_000_000
SUBSCRIBED = ["MachineAdded", "DeploymentSucceeded", "DeploymentFailed", "ManualInterventionInterruptionRaised"]


def bench_rules(*, window: float) -> str:
    """The sample rules with the approval relay on, looking again soon (as in the end-to-end tests)."""
    text = RULES.format(window=window, task_check=1, triggers="MachineAdded")
    looks = '{"look_again_seconds": 0.5, "look_again_max_seconds": 1, "keep_looking_seconds": 60}'
    return text.replace("    approvals:\n      enabled: false\n", f"    approvals: {looks}\n")


def outcome_bodies(count: int) -> list[bytes]:
    """`count` Octopus webhook bodies, failed and succeeded alternately, each with its own event, deployment
    and task."""
    templates = [((FIXTURES / name).read_text(), ids) for name, *ids in OUTCOME_PAYLOADS]
    bodies = []
    for index in range(count):
        text, (event_id, deployment_id, task_id) = templates[index % len(templates)]
        number = FIRST_NUMBER + index
        text = text.replace(event_id, f"Events-{number}").replace(deployment_id, f"Deployments-{number}")
        bodies.append(text.replace(task_id, f"ServerTasks-{number}").encode())
    return bodies


# ---------------------------------------------------------------------------------------------- driving


@contextmanager
def own_redis(directory: Path) -> Iterator[str]:
    """A `redis-server` of this run's own on a free loopback port, stopped at the end; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: give --redis-url")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    process = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("the run's redis-server did not answer") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def used_memory(connection: redis.Redis) -> int:
    return int(connection.info("memory")["used_memory"])


def wait_until(what: str, probe: Callable[[], bool], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s\n{tail(log)}")
        time.sleep(0.1)


def run_plans(octopus: httpx.Client, store: PlanStore, count: int, timeout: float, log: Path) -> list[Plan]:
    """Add `count` web servers to Production, one after the other, each waited for until its plan ends."""
    plans: list[Plan] = []
    for number in range(count):
        created = octopus.post(MACHINES_PATH, json=new_web_server(f"prod-web-mem-{number}", PRODUCTION_ID))
        created.raise_for_status()
        machine_id = created.json()["Id"]

        def ended(machine: str = machine_id) -> bool:
            return any(
                machine in plan.machine_ids and plan.status in ("succeeded", "failed") for plan in store.recent(50)
            )

        wait_until(f"the plan for {machine_id}", ended, timeout, log)
        plans.extend(plan for plan in store.recent(50) if machine_id in plan.machine_ids)
    return plans


def post_outcomes(intake_url: str, bodies: Sequence[bytes]) -> None:
    headers = {HEADER: SECRET, "Content-Type": "application/json"}
    with httpx.Client(base_url=intake_url, headers=headers, timeout=30) as client:
        for body in bodies:
            answer = client.post("/webhooks/octopus", content=body)
            if answer.status_code != 202:
                raise RuntimeError(f"the intake answered {answer.status_code}: {answer.text[:300]}")


def settled(queue: Queue) -> bool:
    """Nothing queued, running or scheduled: every job has finished (or failed)."""
    return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0 and queue.scheduled_job_registry.count == 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say(
        f"Redis memory: {args.plans} redeploy plan(s) with approvals relayed, then {args.events} deployment "
        f"outcomes through the intake and one worker"
    )
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        own = args.redis_url is None
        redis_url = stack.enter_context(own_redis(directory)) if own else args.redis_url
        connection, keys = stack.enter_context(redis_space(redis_url))
        rules = directory / "rules.yaml"
        rules.write_text(bench_rules(window=0.5))
        sim_options = ["--delivery-interval", "0.05", "--queue-delay", "0", "--step-duration", "0.05"]
        sim = stack.enter_context(
            server(
                "simulator", env=python_env(), log=directory / "simulator.log", options=sim_options, ready_path="/api"
            )
        )
        env = conductor_env(
            redis_url=redis_url,
            keys=keys,
            rules=rules,
            octopus_url=sim.url,
            octopus_api_key=CONDUCTOR_API_KEY,
            extra={"CONDUCTOR_RETENTION_SECONDS": str(int(args.retention_days * DAY))},
        )
        intake = stack.enter_context(server("intake", env=env, log=directory / "intake.log"))
        log = directory / "worker.log"
        stack.enter_context(worker(env, log))
        octopus = stack.enter_context(admin(sim.url))
        subscribe(octopus, intake.url, SUBSCRIBED)
        queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
        started = time.perf_counter()
        plans = run_plans(octopus, PlanStore(connection, keys.prefix), args.plans, args.timeout, log)
        wait_until("the plans' jobs", lambda: settled(queue), args.timeout, log)
        before = used_memory(connection)
        post_outcomes(intake.url, outcome_bodies(args.events))
        wanted = {keys.job_id(f"Events-{FIRST_NUMBER + index}") for index in range(args.events)}
        finished = FinishedJobRegistry(queue=queue)
        wait_until(
            "the outcome jobs", lambda: settled(queue) and wanted <= set(finished.get_job_ids()), args.timeout, log
        )
        driven = time.perf_counter() - started
        grown = used_memory(connection) - before if own else None
        failed = FailedJobRegistry(queue=queue).count
        kinds = measure_keys(connection, keys)
    say(
        f"  {len(plans)} plan(s): "
        + "; ".join(
            f"{plan.id} {plan.status}, {len(plan.steps)} steps, "
            f"{sum(1 for step in plan.steps if step.deployment_id)} deployments"
            for plan in plans
        )
        + f"; {kinds.get('approval', Kind()).keys} approval relay records; {failed} failed jobs; "
        f"driven in {driven:.1f} s"
    )
    counted = sum(kind.bytes for kind in kinds.values())
    lines, facts = steady_state(kinds, len(plans), args, retention_days=args.retention_days)
    events = per_event(lines)
    redis_count = None if grown is None else grown / args.events
    if redis_count is None:
        say(f"  MEMORY USAGE of the run's keys: {human(counted)} (used_memory not read: a shared Redis)")
    else:
        say(
            f"  MEMORY USAGE of the run's keys: {human(counted)}; while the {args.events} outcomes were stored and "
            f"handled, used_memory grew {redis_count:.0f} B per event, MEMORY USAGE says "
            f"{events['deployment outcome']:.0f} B ({redis_count / events['deployment outcome']:.2f})"
        )
    figures = render(kinds, lines, facts)
    say("bytes per event, while kept: " + ", ".join(f"{what} {size:.0f} B" for what, size in events.items()))
    return {
        "redis": "own redis-server" if grown is not None else "shared (--redis-url)",
        "memory_usage_bytes": counted,
        "used_memory_per_outcome_event": None if redis_count is None else round(redis_count),
        "events": args.events,
        "failed_jobs": failed,
        "plans": [plan.id for plan in plans],
        "kinds": {
            name: {"keys": kind.keys, "bytes": kind.bytes, "each": round(kind.each, 1), "entries": kind.entries}
            for name, kind in sorted(kinds.items())
        },
        "bytes_per_event": {what: round(size) for what, size in events.items()},
        "daily": {
            "outcomes": args.outcomes_per_day,
            "interruptions": args.interruptions_per_day,
            "machine_events": args.machine_events_per_day,
            "plans": args.plans_per_day,
            "relays": args.relays_per_day,
        },
        **facts,
        **figures,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.redis_memory", __doc__)
    parser.add_argument("--events", type=int, default=1000, help="deployment outcomes posted (default 1000)")
    parser.add_argument("--plans", type=int, default=2, help="redeploy plans with relayed approvals (default 2)")
    parser.add_argument("--outcomes-per-day", type=int, default=25_000, help="default 25,000")
    parser.add_argument("--interruptions-per-day", type=int, default=20_000, help="default 20,000")
    parser.add_argument("--machine-events-per-day", type=int, default=5_000, help="default 5,000")
    parser.add_argument("--plans-per-day", type=int, default=500, help="default 500")
    parser.add_argument("--relays-per-day", type=int, default=2_000, help="approval relays a day (default 2,000)")
    parser.add_argument(
        "--retention-days",
        type=float,
        default=DEFAULT_SECONDS / DAY,
        help=f"CONDUCTOR_RETENTION_SECONDS in days, for the run and the figures (default {DEFAULT_SECONDS / DAY:g})",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds (default 120)")
    parser.add_argument(
        "--redis-url",
        default=None,
        help=f"measure in this Redis (e.g. {DEFAULT_REDIS_URL}) instead of a redis-server of the run's own",
    )
    args = parser.parse_args(argv)
    if not 200 <= args.events <= 20_000 or not 1 <= args.plans <= 10 or not 0 < args.timeout <= 600:
        parser.error("--events must be in [200, 20000], --plans in [1, 10], --timeout in (0, 600]")
    if not 0 < args.retention_days <= 3650:
        parser.error("--retention-days must be in (0, 3650]")
    emit("redis_memory", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
