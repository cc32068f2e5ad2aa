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
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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
from service.settings import Settings
from simulator.seed import CONDUCTOR_API_KEY, PRODUCTION_ID
from workers.event_queue import JobPolicy
from workers.keys import RedisKeys
from workers.plans import Plan, PlanStore
from workers.redis_client import as_text
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
MACHINE_EVENT = "MachineAdded"
INTERRUPTION_EVENT = "ManualInterventionInterruptionRaised"
OUTCOME_EVENTS = ("DeploymentSucceeded", "DeploymentFailed")
DAY = 24 * 3600
YEAR_DAYS = 365


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


# ---------------------------------------------------------------------------------------------- measuring


@dataclass
class Kind:
    """The keys of one kind: how many, their bytes, their TTLs (seconds; -1 none)."""

    keys: int = 0
    bytes: int = 0
    ttls: list[int] = field(default_factory=list)
    entries: int = 0  # for a sorted set: its members

    @property
    def each(self) -> float:
        return self.bytes / self.keys if self.keys else 0.0

    @property
    def per_entry(self) -> float:
        return self.bytes / self.entries if self.entries else 0.0

    def add(self, size: int, ttl: int, entries: int = 0) -> None:
        self.keys += 1
        self.bytes += size
        self.ttls.append(ttl)
        self.entries += entries


def conductor_kind(name: str) -> str:
    """`plan:plan-3` -> `plan`; the index keys keep their whole name."""
    return name.split(":", 1)[0]


def measure_keys(connection: redis.Redis, keys: RedisKeys) -> dict[str, Kind]:
    """Every key of the run, by kind: the conductor's by the first part of their name, RQ's job hashes and
    result streams by the event category of their job (`follow-up` for the jobs handlers schedule)."""
    kinds: dict[str, Kind] = defaultdict(Kind)
    job_prefix = f"rq:job:{keys.prefix}-"
    results_prefix = f"rq:results:{keys.prefix}-"
    found = [as_text(key) for key in connection.scan_iter(match=f"{keys.prefix}:*", count=1000)]
    found += [as_text(key) for key in connection.scan_iter(match=f"rq:*{keys.prefix}*", count=1000)]
    for key in found:
        size = int(connection.memory_usage(key, samples=0) or 0)
        ttl = int(connection.ttl(key))
        key_type = as_text(connection.type(key))
        entries = int(connection.zcard(key)) if key_type == "zset" else 0
        if key.startswith(f"{keys.prefix}:"):
            kind = conductor_kind(key[len(keys.prefix) + 1 :])
        elif key.startswith(job_prefix) or key.startswith(results_prefix):
            job_id = key.split(":", 2)[2]
            description = as_text(connection.hget(f"rq:job:{job_id}", "description") or b"")
            status = as_text(connection.hget(f"rq:job:{job_id}", "status") or b"")
            category = description.split(" ", 1)[0] if job_id.startswith(f"{keys.prefix}-Events-") else "follow-up"
            part = "job" if key.startswith("rq:job:") else "result"
            kind = f"rq {part} {category}" + ("" if status == "finished" else f" ({status or 'gone'})")
        else:
            kind = key.replace(keys.prefix, "<prefix>")
        kinds[kind].add(size, ttl, entries)
    return dict(kinds)


# ---------------------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Line:
    """One term of the steady state: bytes of one record, how many a day, how many days each is kept."""

    what: str
    bytes: float
    per_day: float
    days: float
    retained: bool  # kept for the retention (for ever, before it): the terms the retention bounds

    def total(self, *, days: float | None = None) -> float:
        return self.bytes * self.per_day * (self.days if days is None else days)


def mean_of(kinds: dict[str, Kind], names: Iterable[str]) -> tuple[float, int]:
    """Bytes per key over several kinds, and the keys counted."""
    chosen = [kinds[name] for name in names if name in kinds]
    count = sum(kind.keys for kind in chosen)
    return (sum(kind.bytes for kind in chosen) / count if count else 0.0), count


def per_event_job(kinds: dict[str, Kind], categories: Sequence[str], registry_entry: float) -> float:
    """A finished job of these categories: its hash, its result stream and its finished-registry entry."""
    job, _ = mean_of(kinds, [f"rq job {category}" for category in categories])
    result, _ = mean_of(kinds, [f"rq result {category}" for category in categories])
    return job + result + registry_entry


def steady_state(
    kinds: dict[str, Kind], plans: int, args: argparse.Namespace, *, retention_days: float
) -> tuple[list[Line], dict[str, Any]]:
    """The terms of the steady state for the stated daily volume, from the bytes measured."""
    dedupe_days = Settings.model_fields["dedupe_window_seconds"].default / DAY
    policy = JobPolicy()
    result_days = policy.result_ttl_seconds / DAY
    outcomes_index = kinds.get("deployments", Kind())
    index_entry = outcomes_index.per_entry
    finished = kinds.get("rq:finished:<prefix>", Kind())
    registry_entry = finished.per_entry
    plans = max(plans, 1)
    follow_ups, _ = mean_of(kinds, ["rq job follow-up", "rq result follow-up"])
    follow_up_keys = kinds.get("rq job follow-up", Kind()).keys
    links = kinds.get("plan-deployment", Kind())
    bindings = kinds.get("binding", Kind())
    events_per_day = args.outcomes_per_day + args.interruptions_per_day + args.machine_events_per_day
    approvals_each = kinds.get("approval", Kind()).each
    lines = [
        Line("dedupe key, every event", mean_of(kinds, ["seen"])[0], events_per_day, dedupe_days, False),
        Line(
            "finished RQ job, deployment outcome",
            per_event_job(kinds, OUTCOME_EVENTS, registry_entry),
            args.outcomes_per_day,
            result_days,
            False,
        ),
        Line(
            "finished RQ job, interruption",
            per_event_job(kinds, [INTERRUPTION_EVENT], registry_entry),
            args.interruptions_per_day,
            result_days,
            False,
        ),
        Line(
            "finished RQ job, machine event",
            per_event_job(kinds, [MACHINE_EVENT], registry_entry),
            args.machine_events_per_day,
            result_days,
            False,
        ),
        Line(
            "deployment outcome + index entry",
            kinds.get("deployment", Kind()).each + index_entry,
            args.outcomes_per_day,
            retention_days,
            True,
        ),
        Line(
            "gathering record, machine event",
            kinds.get("gathered", Kind()).each,
            args.machine_events_per_day,
            retention_days,
            True,
        ),
        Line(
            "redeploy plan + index entry + its machines",
            kinds.get("plan", Kind()).each + index_entry + kinds.get("plan-machines", Kind()).each,
            args.plans_per_day,
            retention_days,
            True,
        ),
        Line(
            f"plan's deployment links ({links.keys / plans:g} per plan)",
            links.each,
            args.plans_per_day * links.keys / plans,
            retention_days,
            True,
        ),
        Line(
            f"approval bindings ({bindings.keys / plans:g} per plan)",
            bindings.each,
            args.plans_per_day * bindings.keys / plans,
            retention_days,
            True,
        ),
        Line(
            f"finished follow-up jobs ({follow_up_keys / plans:g} per plan)",
            follow_ups + registry_entry,
            args.plans_per_day * follow_up_keys / plans,
            result_days,
            False,
        ),
        Line(
            "approval relay record + index entry",
            approvals_each + index_entry,
            args.relays_per_day,
            retention_days,
            True,
        ),
    ]
    bounded = sum(kinds[name].bytes for name in ("recent-events", "plan-counter") if name in kinds)
    facts = {
        "index_entry_bytes": round(index_entry, 1),
        "finished_registry_entry_bytes": round(registry_entry, 1),
        "dedupe_days": dedupe_days,
        "result_ttl_days": result_days,
        "retention_days": retention_days,
        "events_per_day": events_per_day,
        "bounded_bytes": bounded,
    }
    return lines, facts


def human(size: float) -> str:
    """Decimal units, as memory is usually quoted for capacity (GB = 10^9 bytes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size:.0f} B"


def days_of(ttls: Sequence[int]) -> str:
    if not ttls:
        return "-"
    if min(ttls) < 0:
        return "no expiry" if max(ttls) < 0 else "some without expiry"
    low, high = min(ttls) / DAY, max(ttls) / DAY
    return f"{high:.2f} d" if high - low < 0.01 else f"{low:.2f}-{high:.2f} d"


def render(kinds: dict[str, Kind], lines: Sequence[Line], facts: dict[str, Any]) -> dict[str, Any]:
    say("  record kind                                        keys   bytes each   TTL read back")
    for name in sorted(kinds):
        kind = kinds[name]
        per = f"{kind.per_entry:8.1f}/entry" if kind.entries > 1 else f"{kind.each:10.0f}  "
        say(f"  {name:<48} {kind.keys:>6} {per:>14}   {days_of(kind.ttls)}")
    say(
        f"  an index entry (deployments index): {facts['index_entry_bytes']} B; a finished-registry entry: "
        f"{facts['finished_registry_entry_bytes']} B"
    )
    say("")
    say("  steady state                                         bytes  x   per day  x  days  =   size")
    for line in lines:
        say(
            f"  {line.what:<48} {line.bytes:>9.0f}  {line.per_day:>10,.0f}  {line.days:>6.2f}  "
            f"{human(line.total()):>10}"
        )
    total = sum(line.total() for line in lines) + facts["bounded_bytes"]
    year = sum(line.total(days=YEAR_DAYS if line.retained else None) for line in lines) + facts["bounded_bytes"]
    say(f"  bounded whatever the volume (recent-events list, plan counter): {human(facts['bounded_bytes'])}")
    say(
        f"steady state for {facts['events_per_day']:,} events a day: {human(total)} "
        f"(retention {facts['retention_days']:g} d, dedupe window {facts['dedupe_days']:g} d, "
        f"RQ result_ttl {facts['result_ttl_days']:g} d)"
    )
    say(f"the same volume with no retention, after a year: {human(year)}")
    return {
        "steady_state_bytes": round(total),
        "year_without_retention_bytes": round(year),
        "lines": [
            {"what": line.what, "bytes": round(line.bytes, 1), "per_day": line.per_day, "days": line.days}
            for line in lines
        ],
    }


def per_event(lines: Sequence[Line]) -> dict[str, float]:
    """What one event of each kind keeps, while it is kept (without the plans and relays it may lead to)."""
    by_what = {line.what: line.bytes for line in lines}
    dedupe = by_what["dedupe key, every event"]
    return {
        "deployment outcome": dedupe
        + by_what["finished RQ job, deployment outcome"]
        + by_what["deployment outcome + index entry"],
        "interruption": dedupe + by_what["finished RQ job, interruption"],
        "machine event": dedupe
        + by_what["finished RQ job, machine event"]
        + by_what["gathering record, machine event"],
    }


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
