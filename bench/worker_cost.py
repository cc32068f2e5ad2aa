"""Worker cost: events handled per second by one worker for the cheapest handler, against RQ's own floor.

Three kinds of job, each `--jobs` of them, run by one `conductor worker --burst` process (the product's
worker exactly: `workers.runner.build_worker`, a SimpleWorker, the same logging set-up), kind after kind,
`--repeat` rounds in the same run:

- `empty`: RQ's floor, a job that does nothing and takes no argument (`bench.worker_cost.empty_job`);
- `empty+arg`: the same empty function given the job argument an event carries (the queued event's JSON),
  which separates what RQ pays for the payload from what the handler does with it;
- `outcome`: `DeploymentSucceeded` events enqueued through `workers.event_queue.EventQueue` (the intake's
  path): the job validates the event, records the deployment outcome in Redis and looks for a waiting plan.

All three use the same job options (timeout, retries, result and failure TTLs: `JobPolicy()`). The rate is
taken from RQ's own timestamps, first `started_at` to last `ended_at`, so process start-up is not in it.
With `--profile`, py-spy (if installed) samples each kind once and the heaviest frames are printed.

    .venv/bin/python -m bench.worker_cost [--jobs 2000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
import redis.connection
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from bench.harness import (
    CONDUCTOR,
    DEFAULT_REDIS_URL,
    REPO,
    command_parser,
    conductor_env,
    emit,
    event_body,
    heaviest_frames,
    payload_parts,
    py_spy,
    quiet_logs,
    redis_space,
    remove_keys,
    say,
    spread,
    stop,
    tail,
)
from workers.event_queue import EventQueue, JobPolicy, Submission
from workers.events import QueuedEvent, WebhookEnvelope, utcnow
from workers.keys import RedisKeys
from workers.redis_client import as_text
from workers.runner import build_worker

KINDS = ("empty", "empty+arg", "outcome")
EMPTY_JOB = "bench.worker_cost.empty_job"
# RQ's phases of a job and the conductor's own frames, as shares of the worker loop's samples.
WORKER_FRAMES = (
    r"workers/|structlog|execute_job|perform_job|dequeue_job|_finalize_success|heartbeat|prepare_execution"
    r"|Job\.fetch|Job\.perform|empty_job"
)


def empty_job(*args: Any) -> None:
    """RQ's floor: a job that does nothing."""


def outcome_events(count: int, first: int) -> list[QueuedEvent]:
    """`count` distinct DeploymentSucceeded events built from the realistic payload."""
    parts = payload_parts()
    events = []
    for number in range(first, first + count):
        envelope = WebhookEnvelope.model_validate_json(event_body(parts, number))
        event = envelope.Payload.Event.model_copy(
            update={
                "Category": "DeploymentSucceeded",
                "RelatedDocumentIds": [
                    f"Deployments-{number}",
                    "Projects-4522",
                    "Releases-11138",
                    "Environments-1621",
                    f"ServerTasks-{number}",
                    "Channels-5462",
                ],
            }
        )
        events.append(QueuedEvent(event=event, source="webhook", received_at=utcnow()))
    return events


def job_options(policy: JobPolicy) -> dict[str, Any]:
    return {
        "timeout": policy.timeout_seconds,
        "result_ttl": policy.result_ttl_seconds,
        "failure_ttl": policy.failure_ttl_seconds,
        "retry": Retry(max=len(policy.retry_intervals), interval=list(policy.retry_intervals)),
    }


def enqueue(kind: str, connection: redis.Redis, keys: RedisKeys, count: int, first: int) -> list[str]:
    """Put `count` jobs of one kind on the conductor's queue; returns their ids."""
    policy = JobPolicy()
    if kind == "outcome":
        queue = EventQueue(connection=connection, keys=keys, policy=policy, dedupe_window_seconds=3600)
        events = outcome_events(count, first)
        ids: list[str] = []
        for start in range(0, count, 500):
            batch = [Submission(event=event, handled=True) for event in events[start : start + 500]]
            ids += [result.job_id for result in queue.store(batch) if result.job_id is not None]
        return ids
    rq_queue = Queue(keys.queue_name, connection=connection, serializer=JSONSerializer)
    argument = outcome_events(1, first)[0].job_argument() if kind == "empty+arg" else None
    ids = [f"{keys.prefix}-{kind.replace('+', '-')}-{number}" for number in range(first, first + count)]
    for start in range(0, count, 500):
        data = [
            Queue.prepare_data(
                EMPTY_JOB, args=(argument,) if argument is not None else (), job_id=job_id, **job_options(policy)
            )
            for job_id in ids[start : start + 500]
        ]
        rq_queue.enqueue_many(data)
    return ids


class CountingConnection(redis.connection.Connection):
    """A Redis connection that counts what it sends: round trips (one per send) and commands."""

    round_trips = 0
    commands = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

    def pack_command(self, *args: Any) -> Any:
        CountingConnection.commands += 1
        return super().pack_command(*args)  # type: ignore[no-untyped-call]

    def pack_commands(self, commands: Any) -> Any:
        commands = list(commands)
        CountingConnection.commands += len(commands)
        return super().pack_commands(commands)  # type: ignore[no-untyped-call]


def round_trips_per_job(url: str, count: int) -> dict[str, dict[str, float]]:
    """Each kind run by an in-process burst worker (`build_worker`) whose Redis connection counts."""
    quiet_logs()
    figures: dict[str, dict[str, float]] = {}
    with redis_space(url) as (plain, keys):
        pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
        counting = redis.Redis(connection_pool=pool)
        try:
            for kind in KINDS:
                enqueue(kind, plain, keys, count, 1)
                worker = build_worker(connection=counting, keys=keys)
                CountingConnection.round_trips = CountingConnection.commands = 0
                worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
                figures[kind] = {
                    "round_trips": round(CountingConnection.round_trips / count, 1),
                    "commands": round(CountingConnection.commands / count, 1),
                }
                remove_keys(plain, keys)
        finally:
            counting.close()
            pool.disconnect()
    return figures


def ping_microseconds(url: str, count: int = 2000) -> float:
    """One Redis round trip on this machine: the median of `count` PINGs."""
    connection = redis.Redis.from_url(url)
    try:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            connection.ping()
            samples.append(time.perf_counter() - started)
    finally:
        connection.close()
    return spread(samples)["median"] * 1e6


def rq_time(value: bytes | str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(as_text(value), "%Y-%m-%dT%H:%M:%S.%fZ")


def timings(connection: redis.Redis, ids: Sequence[str]) -> dict[str, Any]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", ["status", "started_at", "ended_at"])
        rows = pipe.execute()
    statuses = Counter(as_text(row[0] or b"missing") for row in rows)
    started = [moment for row in rows if (moment := rq_time(row[1])) is not None]
    ended = [moment for row in rows if (moment := rq_time(row[2])) is not None]
    span = (max(ended) - min(started)).total_seconds() if started and ended else float("nan")
    return {"statuses": dict(statuses), "span_s": span, "jobs_per_s": len(ended) / span if span else float("nan")}


def run_worker(env: dict[str, str], log: Path, *, profile_to: Path | None, timeout: float) -> float:
    """One `conductor worker --burst` until the queue is empty; returns its wall time."""
    command = [CONDUCTOR, "worker", "--burst"]
    if profile_to is not None:
        command = [
            py_spy() or "py-spy",
            "record",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(profile_to),
            "--",
            *command,
        ]
    started = time.perf_counter()
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=sink, stderr=sink)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(process)
        raise RuntimeError(f"the burst worker did not finish within {timeout} s:\n{tail(log)}") from None
    if process.returncode != 0:
        raise RuntimeError(f"the burst worker exited with {process.returncode}:\n{tail(log)}")
    return time.perf_counter() - started


def measure(args: argparse.Namespace) -> dict[str, Any]:
    say(f"worker cost: {args.jobs} jobs per kind, {args.repeat} round(s), one `conductor worker --burst`")
    profiling = args.profile and py_spy() is not None
    if args.profile and not profiling:
        say("  (--profile: py-spy is not installed; `.venv/bin/pip install py-spy`)")
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rounds: list[dict[str, Any]] = []
    profiles: dict[str, list[tuple[float, str]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp,
        redis_space(args.redis_url) as (connection, keys),
    ):
        directory = Path(tmp)
        env = conductor_env(redis_url=args.redis_url, keys=keys)
        number = 1
        for round_index in range(args.repeat + (1 if profiling else 0)):
            profile_round = profiling and round_index == args.repeat
            row: dict[str, Any] = {}
            for kind in KINDS:
                ids = enqueue(kind, connection, keys, args.jobs, number)
                number += args.jobs
                folded = directory / f"{kind.replace('+', '-')}.folded" if profile_round else None
                wall = run_worker(env, directory / "worker.log", profile_to=folded, timeout=args.jobs * 0.1 + 60)
                measured = timings(connection, ids)
                if measured["statuses"].get("finished", 0) != len(ids):
                    raise RuntimeError(
                        f"{kind}: not every job finished: {measured['statuses']}\n{tail(directory / 'worker.log')}"
                    )
                if folded is not None:
                    profiles[kind] = heaviest_frames(folded, top=16, keep=WORKER_FRAMES, within="BaseWorker.work")
                else:
                    rates[kind].append(measured["jobs_per_s"])
                    row[kind] = {"jobs_per_s": round(measured["jobs_per_s"], 1), "wall_s": round(wall, 2)}
                remove_keys(connection, keys)
            if row:
                rounds.append(row)
                say(
                    f"  round {round_index + 1}: "
                    + "  ".join(f"{kind} {row[kind]['jobs_per_s']:>7.1f} jobs/s" for kind in KINDS)
                    + f"  outcome/empty {row['outcome']['jobs_per_s'] / row['empty']['jobs_per_s']:.2f}"
                )
    figures: dict[str, Any] = {"jobs_per_kind": args.jobs, "rounds": rounds}
    figures["redis_ping_us"] = round(ping_microseconds(args.redis_url), 1)
    figures["per_job_redis"] = round_trips_per_job(args.redis_url, min(args.jobs, 300))
    for kind in KINDS:
        figures[kind] = {key: round(value, 1) for key, value in spread(rates[kind]).items()}
    ratios = [row["outcome"]["jobs_per_s"] / row["empty"]["jobs_per_s"] for row in rounds]
    figures["outcome_over_empty"] = {key: round(value, 3) for key, value in spread(ratios).items()}
    per_job_ms = {kind: 1000 / figures[kind]["median"] for kind in KINDS}
    figures["ms_per_job"] = {kind: round(value, 3) for kind, value in per_job_ms.items()}
    say(
        f"per job (medians): empty {per_job_ms['empty']:.2f} ms, empty+arg {per_job_ms['empty+arg']:.2f} ms, "
        f"outcome {per_job_ms['outcome']:.2f} ms; outcome/empty rate {figures['outcome_over_empty']['median']:.2f} "
        f"(min {figures['outcome_over_empty']['min']:.2f}, max {figures['outcome_over_empty']['max']:.2f})"
    )
    say(
        f"  the payload costs RQ {per_job_ms['empty+arg'] - per_job_ms['empty']:.2f} ms per job, the handler "
        f"{per_job_ms['outcome'] - per_job_ms['empty+arg']:.2f} ms"
    )
    say(
        f"  Redis round trip (PING, median): {figures['redis_ping_us']} us; per job (in-process count): "
        + ", ".join(
            f"{kind} {row['round_trips']:g} round trips / {row['commands']:g} commands"
            for kind, row in figures["per_job_redis"].items()
        )
    )
    if profiles:
        figures["profile_top_frames"] = {
            kind: [f"{share}% {frame}" for share, frame in rows] for kind, rows in profiles.items()
        }
        for kind, frames in profiles.items():
            say(f"  py-spy, {kind} (inclusive share of the worker loop's samples):")
            for share, frame in frames:
                say(f"    {share:5.1f}%  {frame}")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.worker_cost", __doc__)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per kind and round (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--profile", action="store_true", help="one more round under py-spy; print the top frames")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    if not 10 <= args.jobs <= 20000 or not 1 <= args.repeat <= 10:
        parser.error("--jobs must be in [10, 20000] and --repeat in [1, 10]")
    emit("worker_cost", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
