"""Intake variants: where the intake's time goes, measured against the bare endpoint in one run.

Each variant is a separate uvicorn process started exactly like `bench.intake_throughput`'s servers (same
options), driven by the same wrk script (~3 KB payload, a distinct Event.Id per request), one after the
other, `--repeat` rounds; for each: requests/s, the ratio to the bare endpoint of the same round, the
server's CPU time per request, and (for the variants that store) that every 2xx answer was stored. What a
variant leaves out costs the difference in CPU per request. The one prototype, `no-store`, is in
`bench.prototypes` (a monkeypatch, not product code).

    bare            read the body, answer 202 (the framework's floor)
    intake          the intake as it is
    quiet           the intake without its per-event log line (CONDUCTOR_LOG_LEVEL=WARNING)
    no-store        the intake without Redis (answers "queued" without storing): the ceiling of the rest

    .venv/bin/python -m bench.intake_variants [--variants bare,intake,quiet] [--repeat 3] [--duration 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import (
    DEFAULT_REDIS_URL,
    Server,
    command_parser,
    conductor_env,
    cpu_seconds,
    emit,
    event_loop_and_http,
    payload_parts,
    python_env,
    redis_space,
    remove_keys,
    say,
    server,
    spread,
)
from bench.intake_throughput import run_wrk, stored_counts, write_wrk_script

VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "bare": ("bare", {}),
    "intake": ("intake", {}),
    "quiet": ("intake", {"CONDUCTOR_LOG_LEVEL": "WARNING"}),
    "no-store": ("no-store", {}),
}
DEFAULT_VARIANTS = "bare,intake,quiet,no-store"


def serve(argv: Sequence[str]) -> int:
    """`python -m bench.intake_variants PATCH --port P ...`: the intake with one prototype applied."""
    from bench import prototypes, serve_app

    patch, *rest = argv
    if patch in ("bare", "intake"):
        return serve_app.main([patch, *rest])
    prototypes.PATCHES[patch]()
    return serve_app.main(["intake", *rest])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    names = [name for name in args.variants.split(",") if name]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or "bare" not in names:
        raise SystemExit(f"unknown variants {unknown}; 'bare' is required; known: {', '.join(VARIANTS)}")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    parts = payload_parts()
    options = ["--loop", args.loop, "--http", args.http]
    picked = event_loop_and_http(python_env(path=args.server_path), loop=args.loop, http=args.http)
    say(
        f"intake variants: {', '.join(names)}; wrk, {args.connections} connections, {args.duration:g} s per run, "
        f"{args.repeat} round(s); uvicorn loop={picked['loop']} http={picked['http']}"
    )
    rps: dict[str, list[float]] = {name: [] for name in names}
    ratio: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    undurable: set[str] = set()
    with (
        tempfile.TemporaryDirectory(prefix="bench-variants-") as tmp,
        redis_space(args.redis_url) as (connection, keys),
    ):
        directory = Path(tmp)
        script = write_wrk_script(directory, parts)
        servers: dict[str, Server] = {}
        contexts = []
        try:
            for name in names:
                patch, extra = VARIANTS[name]
                env = conductor_env(redis_url=args.redis_url, keys=keys, extra=extra, path=args.server_path)
                context = server(
                    patch, env=env, log=directory / f"{name}.log", options=options, module="bench.intake_variants"
                )
                servers[name] = context.__enter__()
                contexts.append(context)
            run = 0

            def load(name: str, seconds: float) -> tuple[float, float]:
                nonlocal run
                run += 1
                target = servers[name]
                before = cpu_seconds(target.process.pid)
                result = run_wrk(
                    target.url, script, duration=seconds, connections=args.connections, threads=1, base=run * 10**8
                )
                time.sleep(0.3)
                used = cpu_seconds(target.process.pid) - before
                if name not in ("bare", "no-store"):
                    jobs, seen = stored_counts(connection, keys)
                    if not (jobs == seen and 0 <= jobs - result["ok"] <= args.connections):
                        undurable.add(name)
                remove_keys(connection, keys)
                return float(result["rps"]), 1e6 * used / max(1, result["requests"])

            for name in names:
                load(name, 1)
            for round_index in range(args.repeat):
                row = {name: load(name, args.duration) for name in names}
                for name, (requests_per_s, cpu_us) in row.items():
                    rps[name].append(requests_per_s)
                    ratio[name].append(requests_per_s / row["bare"][0])
                    cpu[name].append(cpu_us)
                say(
                    f"  round {round_index + 1}: "
                    + " | ".join(f"{name} {value[0]:.0f}/s {value[1]:.0f} us" for name, value in row.items())
                )
        finally:
            for context in reversed(contexts):
                context.__exit__(None, None, None)
    figures: dict[str, Any] = {
        "uvicorn": picked,
        "server_path": list(args.server_path),
        "every_2xx_stored": {name: name not in undurable for name in names if name not in ("bare", "no-store")},
        "variants": {},
    }
    say("  variant           req/s (median)   ratio to bare (median, min-max)   server CPU us/request (median)")
    for name in names:
        r, q, c = spread(rps[name]), spread(ratio[name]), spread(cpu[name])
        figures["variants"][name] = {
            "rps": round(r["median"], 1),
            "ratio": {key: round(value, 3) for key, value in q.items()},
            "cpu_us_per_request": round(c["median"]),
        }
        say(
            f"  {name:<16} {r['median']:>10.0f}       {q['median']:.3f} ({q['min']:.3f}-{q['max']:.3f})"
            f"                 {c['median']:>6.0f}"
        )
    say(
        "  every 2xx stored (2xx = jobs = dedupe records, up to the requests in flight at the end): "
        + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in figures["every_2xx_stored"].items())
    )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in {patch for patch, _ in VARIANTS.values()}:
        return serve(arguments)
    parser = command_parser("bench.intake_variants", __doc__)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run (default 4)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop for every server (default auto)")
    parser.add_argument("--http", default="auto", help="uvicorn --http for every server (default auto)")
    parser.add_argument("--server-path", action="append", default=[], metavar="DIR", help="see intake_throughput")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"default {DEFAULT_REDIS_URL}")
    args = parser.parse_args(arguments)
    if not 0 < args.duration <= 30 or not 1 <= args.repeat <= 10:
        parser.error("--duration must be in (0, 30] and --repeat in [1, 10]")
    emit("intake_variants", measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
