"""Intake throughput: `POST /webhooks/octopus` against a bare Starlette endpoint, same settings, same load.

Both servers run as separate uvicorn processes started by `bench.serve_app` with identical options (one
process each; uvicorn's "auto" loop and HTTP implementation, printed below). The intake is the real one:
secret header, content type, size limit, pydantic validation, deduplication and the durable enqueue (one
Lua script call per batch of requests). The bare endpoint reads the body and answers 202.

1. Throughput: wrk (closed loop, `--connections` keep-alive connections, the ~3 KB `deployment_failed_2023`
   payload with a distinct Event.Id per request, built by a wrk Lua script), bare and intake alternately,
   `--repeat` times; the ratio is taken per pair. Without wrk, the Python closed-loop generator is used.
   After each intake run the 2xx answers are compared with what Redis holds (jobs in the RQ queue and
   dedupe records): every 2xx must be stored; Redis may hold up to `--connections` more (requests that
   were in flight when wrk stopped).
2. Latency at a fixed offered load (`--rates`, requests/s): the Python open-loop generator, latency from
   each request's due time (no coordinated omission), p50/p99/max for both servers. Every 2xx answer of
   the intake is then checked one by one: its job and its dedupe record are in Redis.

    .venv/bin/python -m bench.intake_throughput [--duration 5] [--connections 32] [--repeat 3] [--rates 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from bench import loadgen
from bench.harness import (
    DEFAULT_REDIS_URL,
    HEADER,
    HOST,
    SECRET,
    Server,
    command_parser,
    conductor_env,
    cpu_seconds,
    emit,
    event_body,
    event_loop_and_http,
    heaviest_frames,
    payload_parts,
    percentile,
    py_spy,
    python_env,
    redis_space,
    remove_keys,
    say,
    server,
    spread,
    tail,
)
from workers.keys import RedisKeys
from workers.redis_client import as_text

PATH = "/webhooks/octopus"
# Issue 15's target with uvicorn[standard] (uvloop + httptools), the configuration the intake ships.
TARGET_RATIO = 0.4
HEADERS = {"Content-Type": "application/json", HEADER: SECRET}

WRK_SCRIPT = """
local parts = {%(parts)s}
local headers = {["Content-Type"] = "application/json", ["%(header)s"] = "%(secret)s"}
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  base = tonumber(args[1]) + tid * 10000000
end
function request()
  counter = counter + 1
  local id = "Events-" .. string.format("%%d", base + counter)
  return wrk.format("POST", "%(path)s", headers, table.concat(parts, id))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"status_errors\\": %%d, \\"connect_errors\\": %%d, " ..
    "\\"read_errors\\": %%d, \\"write_errors\\": %%d, \\"timeouts\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, " ..
    "\\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def lua_long_string(data: bytes) -> str:
    text = data.decode()
    level = "=" * 3
    if f"]{level}]" in text:
        raise ValueError("the payload holds the Lua long-bracket terminator")
    return f"[{level}[{text}]{level}]"


def write_wrk_script(directory: Path, parts: Sequence[bytes]) -> Path:
    # A long string drops a newline right after its opening bracket; the payload does not start with one.
    script = WRK_SCRIPT % {
        "parts": ", ".join(lua_long_string(part) for part in parts),
        "header": HEADER,
        "secret": SECRET,
        "path": PATH,
    }
    path = directory / "post.lua"
    path.write_text(script)
    return path


def run_wrk(url: str, script: Path, *, duration: float, connections: int, threads: int, base: int) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url + PATH,
        "--",
        str(base),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    line = next((line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    seconds = figures["duration_us"] / 1e6
    figures["ok"] = figures["requests"] - figures["status_errors"]
    figures["rps"] = figures["ok"] / seconds
    return figures


def run_python_closed(
    url: str, parts: Sequence[bytes], *, duration: float, connections: int, base: int
) -> dict[str, Any]:
    """Fallback without wrk: a fixed number of requests sized from `duration` at a guessed 2,000/s."""
    port = int(url.rsplit(":", 1)[1])
    result = asyncio.run(
        loadgen.closed_loop(
            host=HOST,
            port=port,
            path=PATH,
            headers=HEADERS,
            make_body=lambda number: event_body(parts, number),
            count=int(2000 * duration),
            connections=connections,
            first_number=base + 1,
        )
    )
    latencies = [answer.latency for answer in result.answers]
    return {
        "requests": len(result.answers),
        "ok": len(result.ok),
        "status_errors": len(result.answers) - len(result.ok),
        "socket_errors": len(result.errors),
        "rps": len(result.ok) / result.elapsed,
        "p50_us": percentile(latencies, 0.5) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
        "max_us": max(latencies, default=0.0) * 1e6,
    }


def stored_counts(connection: redis.Redis, keys: RedisKeys) -> tuple[int, int]:
    """(jobs waiting in the RQ queue, dedupe records), once the numbers stop moving."""
    last = (-1, -1)
    for _ in range(50):
        jobs = int(connection.llen(f"rq:queue:{keys.queue_name}"))
        seen = sum(1 for _ in connection.scan_iter(match=keys.dedupe("*"), count=2000))
        if (jobs, seen) == last:
            return last
        last = (jobs, seen)
        time.sleep(0.2)
    return last


def check_each_answer(connection: redis.Redis, keys: RedisKeys, result: loadgen.LoadResult) -> dict[str, int]:
    """Every 2xx answer's event has its job hash, its place in the queue and its dedupe record."""
    queued = {as_text(item) for item in connection.lrange(f"rq:queue:{keys.queue_name}", 0, -1)}
    ok = result.ok
    with connection.pipeline(transaction=False) as pipe:
        for answer in ok:
            event_id = f"Events-{answer.number}"
            pipe.exists(f"rq:job:{keys.job_id(event_id)}")
            pipe.exists(keys.dedupe(event_id))
        flags = pipe.execute()
    missing_job = sum(1 for flag in flags[0::2] if not flag)
    missing_dedupe = sum(1 for flag in flags[1::2] if not flag)
    not_queued = sum(1 for answer in ok if keys.job_id(f"Events-{answer.number}") not in queued)
    return {
        "answered_2xx": len(ok),
        "missing_job": missing_job,
        "missing_dedupe": missing_dedupe,
        "not_in_queue": not_queued,
    }


# The intake's own work, its libraries, and the HTTP layer's two ends (parsing a request, sending an answer).
PROFILED = (
    r"service/|workers/|redis/|rq/|pydantic|structlog|prometheus|json/|zlib"
    r"|data_received|Response\.__call__|RequestResponseCycle\.send"
)


def profile_intake(intake: Server, directory: Path, run: Callable[[], object]) -> list[str]:
    """py-spy attached to the intake for one more throughput run; the heaviest frames, inclusive."""
    spy = py_spy()
    if spy is None:
        say("  (--profile: py-spy is not installed; `.venv/bin/pip install py-spy`)")
        return []
    folded = directory / "intake.folded"
    command = [spy, "record", "--pid", str(intake.process.pid), "--rate", "250", "--format", "raw"]
    with (directory / "py-spy.log").open("ab") as log:
        recorder = subprocess.Popen([*command, "--output", str(folded)], stdout=log, stderr=log)
        try:
            time.sleep(1.0)
            run()
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(30)
    if not folded.exists():
        say(f"  (--profile: py-spy recorded nothing: {tail(directory / 'py-spy.log', 400)})")
        return []
    frames = heaviest_frames(folded, top=30, keep=PROFILED, within="Runner.run")
    say("  py-spy on the intake under load (inclusive share of the event loop thread's samples, wall clock):")
    for share, frame in frames:
        say(f"    {share:5.1f}%  {frame}")
    return [f"{share}% {frame}" for share, frame in frames]


def fixed_rate(url: str, parts: Sequence[bytes], *, rate: float, seconds: float, base: int) -> loadgen.LoadResult:
    port = int(url.rsplit(":", 1)[1])
    return asyncio.run(
        loadgen.open_loop(
            host=HOST,
            port=port,
            path=PATH,
            headers=HEADERS,
            make_body=lambda number: event_body(parts, number),
            rate=rate,
            count=int(rate * seconds),
            connections=64,
            first_number=base + 1,
        )
    )


def latency_figures(result: loadgen.LoadResult) -> dict[str, float]:
    latencies = [answer.latency * 1000 for answer in result.answers]
    return {
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies, default=float("nan")), 2),
        "achieved_rps": round(result.throughput, 1),
        "non_2xx": len(result.answers) - len(result.ok),
        "socket_errors": len(result.errors),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk") is not None)
    parts = payload_parts()
    bare_env = python_env(path=args.server_path)
    picked = event_loop_and_http(bare_env, loop=args.loop, http=args.http)
    figures: dict[str, Any] = {
        "generator": "wrk" if use_wrk else "python closed loop",
        "uvicorn": {**picked, "loop_option": args.loop, "http_option": args.http, "workers": 1},
        "server_path": list(args.server_path),
        "payload_bytes": len(event_body(parts, 1)),
        "connections": args.connections,
        "duration_s": args.duration,
    }
    say(
        f"intake throughput: {figures['generator']}, {args.connections} connections, {args.duration:g} s per run, "
        f"{args.repeat} pair(s); uvicorn loop={figures['uvicorn']['loop']} http={figures['uvicorn']['http']}; "
        f"payload {figures['payload_bytes']} bytes"
    )
    options = ["--loop", args.loop, "--http", args.http]
    with (
        tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp,
        redis_space(args.redis_url) as (connection, keys),
    ):
        directory = Path(tmp)
        script = write_wrk_script(directory, parts)
        env = conductor_env(redis_url=args.redis_url, keys=keys, path=args.server_path)
        with (
            server("bare", env=bare_env, log=directory / "bare.log", options=options) as bare,
            server("intake", env=env, log=directory / "intake.log", options=options) as intake,
        ):
            run = 0

            def load(target: Server, seconds: float) -> dict[str, Any]:
                """One run; adds the server's CPU time per answered request."""
                nonlocal run
                run += 1
                base = run * 100_000_000
                cpu_before = cpu_seconds(target.process.pid)
                if use_wrk:
                    result = run_wrk(
                        target.url,
                        script,
                        duration=seconds,
                        connections=args.connections,
                        threads=args.threads,
                        base=base,
                    )
                else:
                    result = run_python_closed(
                        target.url, parts, duration=seconds, connections=args.connections, base=base
                    )
                time.sleep(0.3)  # the requests in flight when the generator stopped
                cpu = cpu_seconds(target.process.pid) - cpu_before
                result["cpu_us_per_request"] = 1e6 * cpu / max(1, result["requests"])
                return result

            for target in (bare, intake):  # warm-up: imports, connection pools, script cache
                load(target, 1)
            remove_keys(connection, keys)

            pairs: list[dict[str, Any]] = []
            for index in range(args.repeat):
                bare_run = load(bare, args.duration)
                intake_run = load(intake, args.duration)
                jobs, seen = stored_counts(connection, keys)
                extra = jobs - intake_run["ok"]
                durable = jobs == seen and 0 <= extra <= args.connections
                pair = {
                    "bare_rps": round(bare_run["rps"], 1),
                    "intake_rps": round(intake_run["rps"], 1),
                    "ratio": round(intake_run["rps"] / bare_run["rps"], 3),
                    "bare_cpu_us": round(bare_run["cpu_us_per_request"]),
                    "intake_cpu_us": round(intake_run["cpu_us_per_request"]),
                    "bare_p50_ms": round(bare_run["p50_us"] / 1000, 2),
                    "bare_p99_ms": round(bare_run["p99_us"] / 1000, 2),
                    "intake_p50_ms": round(intake_run["p50_us"] / 1000, 2),
                    "intake_p99_ms": round(intake_run["p99_us"] / 1000, 2),
                    "intake_2xx": intake_run["ok"],
                    "intake_non_2xx": intake_run["status_errors"],
                    "stored_jobs": jobs,
                    "stored_dedupe_records": seen,
                    "durable": durable,
                }
                pairs.append(pair)
                say(
                    f"  pair {index + 1}: bare {pair['bare_rps']:>8.1f} req/s  intake {pair['intake_rps']:>8.1f} req/s"
                    f"  ratio {pair['ratio']:.3f}"
                )
                say(
                    f"          server CPU per request: bare {pair['bare_cpu_us']} us, "
                    f"intake {pair['intake_cpu_us']} us; closed-loop p50/p99: "
                    f"bare {pair['bare_p50_ms']}/{pair['bare_p99_ms']} ms, "
                    f"intake {pair['intake_p50_ms']}/{pair['intake_p99_ms']} ms"
                )
                say(
                    f"          durability: {pair['intake_2xx']} answered 2xx, {jobs} jobs queued, {seen} dedupe "
                    f"records, {pair['intake_non_2xx']} non-2xx -> {'every 2xx stored' if durable else 'MISMATCH'}"
                )
                remove_keys(connection, keys)
            figures["pairs"] = pairs
            if args.profile:
                figures["profile_top_frames"] = profile_intake(intake, directory, lambda: load(intake, args.duration))
                remove_keys(connection, keys)
            for name in ("bare_rps", "intake_rps", "ratio", "bare_cpu_us", "intake_cpu_us"):
                figures[name] = spread([pair[name] for pair in pairs])
            figures["durable"] = all(pair["durable"] for pair in pairs)

            fixed: list[dict[str, Any]] = []
            for rate in args.rates:
                row: dict[str, Any] = {"rate": rate, "seconds": args.rate_seconds}
                for target in (bare, intake):
                    run += 1
                    result = fixed_rate(target.url, parts, rate=rate, seconds=args.rate_seconds, base=run * 100_000_000)
                    row[target.name] = latency_figures(result)
                    if target is intake:
                        row["intake_check"] = check_each_answer(connection, keys, result)
                        remove_keys(connection, keys)
                fixed.append(row)
                check = row["intake_check"]
                say(
                    f"  offered {rate:g} req/s for {args.rate_seconds:g} s (open loop): "
                    f"bare p50 {row['bare']['p50_ms']} ms p99 {row['bare']['p99_ms']} ms; "
                    f"intake p50 {row['intake']['p50_ms']} ms p99 {row['intake']['p99_ms']} ms "
                    f"(max {row['intake']['max_ms']} ms, achieved {row['intake']['achieved_rps']} req/s); "
                    f"each of {check['answered_2xx']} 2xx checked: {check['missing_job']} without job, "
                    f"{check['missing_dedupe']} without dedupe record, {check['not_in_queue']} not in the queue"
                )
            figures["fixed_rate"] = fixed
    ratio = figures["ratio"]
    cpu_ratio = figures["bare_cpu_us"]["median"] / max(figures["intake_cpu_us"]["median"], 1)
    figures["cpu_ratio"] = round(cpu_ratio, 3)
    say(
        f"intake/bare: median {ratio['median']:.3f} (min {ratio['min']:.3f}, max {ratio['max']:.3f}); "
        f"bare median {figures['bare_rps']['median']:.0f} req/s, intake median {figures['intake_rps']['median']:.0f} "
        f"req/s; server CPU per request: bare {figures['bare_cpu_us']['median']:.0f} us, intake "
        f"{figures['intake_cpu_us']['median']:.0f} us (bare/intake {cpu_ratio:.3f}); target >= {TARGET_RATIO}: "
        f"{'reached' if ratio['median'] >= TARGET_RATIO else 'not reached'}"
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.intake_throughput", __doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="bare/intake pairs (default 3)")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(part) for part in text.split(",") if part],
        default=[500.0],
        help="fixed offered loads in requests/s, comma-separated (default 500)",
    )
    parser.add_argument("--rate-seconds", type=float, default=5.0, help="seconds per fixed-rate run (default 5)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop for both servers (default auto)")
    parser.add_argument("--http", default="auto", help="uvicorn --http for both servers (default auto)")
    parser.add_argument("--profile", action="store_true", help="one more intake run under py-spy; top frames")
    parser.add_argument(
        "--server-path",
        action="append",
        default=[],
        metavar="DIR",
        help="put DIR first on both servers' PYTHONPATH (repeatable), e.g. a `pip install --target DIR uvloop "
        "httptools` to measure uvicorn[standard] without changing the virtualenv",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 60 or args.repeat < 1 or args.repeat > 10:
        parser.error("--duration must be in (0, 60] and --repeat in [1, 10]")
    if any(rate <= 0 or rate > 5000 for rate in args.rates) or not 0 < args.rate_seconds <= 30:
        parser.error("--rates must be in (0, 5000] and --rate-seconds in (0, 30]")
    emit("intake_throughput", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
