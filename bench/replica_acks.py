"""The latency cost of CONDUCTOR_REDIS_REPLICA_ACKS: the intake at a fixed offered load against a Redis
primary with one replica, with replica acks off (0) and on (1: Redis's WAIT after each batch's store),
alternately, `--repeat` times.

It starts its own primary and replica (`redis-server` on free loopback ports, no persistence, the replica
in sync before the first run) and one intake per setting (`bench.serve_app intake`, one uvicorn process).
Latency comes from bench.intake_throughput's open-loop generator (from each request's due time); every 2xx
of a run with acks on is checked to be on the replica too.

    .venv/bin/python -m bench.replica_acks [--rate 500] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bench.harness import (
    command_parser,
    conductor_env,
    emit,
    free_port,
    payload_parts,
    redis_space,
    remove_keys,
    say,
    server,
    spread,
)
from bench.intake_throughput import fixed_rate, latency_figures
from workers.keys import RedisKeys


@contextmanager
def primary_with_replica(directory: Path) -> Iterator[tuple[str, redis.Redis]]:
    """A primary's URL and a client of its replica, both stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    primary, replica = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
            data = directory / str(port)
            data.mkdir()
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", ""]
            processes.append(subprocess.Popen([*args, "--appendonly", "no", *extra], stdout=subprocess.DEVNULL))
        replica_client = redis.Redis(port=replica, socket_timeout=2)
        deadline = time.monotonic() + 30
        while True:
            try:
                if replica_client.info("replication").get("master_link_status") == "up":
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not come in sync")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{primary}/0", replica_client
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def on_replica(replica: redis.Redis, keys: RedisKeys, numbers: Sequence[int]) -> int:
    """How many of these events' dedupe records the replica holds."""
    found = 0
    for start in range(0, len(numbers), 500):
        batch = [keys.dedupe(f"Events-{number}") for number in numbers[start : start + 500]]
        found += int(replica.exists(*batch))
    return found


def measure(args: Any) -> dict[str, Any]:
    parts = payload_parts()
    runs: dict[int, list[dict[str, float]]] = {0: [], 1: []}
    missing_on_replica = 0
    with tempfile.TemporaryDirectory(prefix="bench-replica-acks-") as tmp:
        directory = Path(tmp)
        with primary_with_replica(directory) as (url, replica), redis_space(url, "acks") as (connection, keys):
            base = 0
            for acks in (0, 1):
                env = conductor_env(redis_url=url, keys=keys, extra={"CONDUCTOR_REDIS_REPLICA_ACKS": str(acks)})
                with server("intake", env=env, log=directory / f"intake-{acks}.log") as intake:
                    fixed_rate(intake.url, parts, rate=args.rate, seconds=1, base=base)  # warm-up
                    base += 10_000_000
                    for _ in range(args.repeat):
                        result = fixed_rate(intake.url, parts, rate=args.rate, seconds=args.seconds, base=base)
                        base += 10_000_000
                        figures = latency_figures(result)
                        runs[acks].append(figures)
                        say(f"replica acks {acks}: {figures}")
                        if acks:
                            numbers = [answer.number for answer in result.ok]
                            missing_on_replica += len(numbers) - on_replica(replica, keys, numbers)
                        remove_keys(connection, keys)
    summary = {
        str(acks): {name: spread([run[name] for run in figures]) for name in ("p50_ms", "p99_ms", "achieved_rps")}
        for acks, figures in runs.items()
    }
    return {
        "rate_rps": args.rate,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "by_replica_acks": summary,
        "acknowledged_missing_on_replica": missing_on_replica,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.replica_acks", __doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="offered load in requests/s (default 500)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per run (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (default 3)")
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 5000 or not 0 < args.seconds <= 30 or not 1 <= args.repeat <= 10:
        parser.error("--rate must be in (0, 5000], --seconds in (0, 30], --repeat in [1, 10]")
    emit("replica_acks", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
