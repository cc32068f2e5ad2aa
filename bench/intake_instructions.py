"""Intake instructions: CPU instructions per request of the intake app, counted by callgrind (deterministic).

The app is built as `conductor serve` builds it (`bench.serve_app.intake_app`, or the bare endpoint with
`--app bare`) and called in-process through ASGI (no sockets; real Redis, under a key prefix of its own that is
deleted at the end), `--requests` requests in waves of `--wave` at once (the batches the intake's store makes
under load), after a warm-up of 32. The run starts itself again under `valgrind --tool=callgrind` with
instrumentation off, switches it on (`callgrind_control -i on`) only around the measured waves, and prints
the instructions per request. On this shared machine CPU times vary by ±30 % from run to run; these counts by
0.1 %, which is how each change to the intake was measured (bench/README.md).

    .venv/bin/python -m bench.intake_instructions [--requests 800] [--app intake|bare]
    (needs valgrind: `apt-get install -y valgrind`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from bench.harness import (
    DEFAULT_REDIS_URL,
    HEADER,
    SECRET,
    command_parser,
    conductor_env,
    emit,
    event_body,
    new_keys,
    payload_parts,
    remove_keys,
    say,
)

WARM_UP = 32


async def _one(app: Any, parts: list[bytes], number: int) -> None:
    body = event_body(parts, number)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (HEADER.lower().encode(), SECRET.encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/octopus",
        "raw_path": b"/webhooks/octopus",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses[:1] not in ([200], [202]):
        raise RuntimeError(f"request {number} answered {statuses}")


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.05)


def child(app_name: str, requests: int, wave: int, signals: Path) -> None:
    """Inside valgrind: warm up, say ready, wait for instrumentation, run the waves, say done."""
    import uvloop

    from bench.serve_app import bare_app, intake_app

    keys = new_keys("instr")
    os.environ.update(conductor_env(redis_url=DEFAULT_REDIS_URL, keys=keys))
    app = bare_app() if app_name == "bare" else intake_app()
    parts = payload_parts()

    async def run() -> None:
        await asyncio.gather(*(_one(app, parts, n) for n in range(1, WARM_UP + 1)))
        (signals / "ready").touch()
        _wait_for(signals / "on")
        for start in range(1000, 1000 + requests, wave):
            await asyncio.gather(*(_one(app, parts, n) for n in range(start, start + wave)))
        (signals / "done").touch()
        _wait_for(signals / "off")

    try:
        uvloop.run(run())
    finally:
        remove_keys(redis.Redis.from_url(DEFAULT_REDIS_URL), keys)


def measure(app_name: str, requests: int, wave: int) -> float:
    """Instructions per request of `requests` requests, counted by callgrind."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y valgrind)")
    with tempfile.TemporaryDirectory(prefix="intake-instructions") as folder:
        signals = Path(folder)
        out = signals / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        command += [sys.executable, "-m", "bench.intake_instructions", "--child", signals.as_posix()]
        command += ["--app", app_name, "--requests", str(requests), "--wave", str(wave)]
        with open(signals / "log", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, cwd=Path(__file__).parent.parent)
            try:
                while not (signals / "ready").exists():
                    if process.poll() is not None:
                        raise RuntimeError((signals / "log").read_text()[-2000:])
                    time.sleep(0.2)
                subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True)
                (signals / "on").touch()
                _wait_for(signals / "done")
                subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], check=True, capture_output=True)
                (signals / "off").touch()
                if process.wait(timeout=120) != 0:
                    raise RuntimeError((signals / "log").read_text()[-2000:])
            finally:
                if process.poll() is None:
                    process.kill()
        totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
        if totals is None:
            raise RuntimeError(f"no totals in {out}")
        return int(totals.group(1)) / requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("bench.intake_instructions", __doc__)
    parser.add_argument("--app", choices=["intake", "bare"], default="intake")
    parser.add_argument("--requests", type=int, default=800, help="measured requests (default 800)")
    parser.add_argument("--wave", type=int, default=16, help="requests at once (default 16)")
    parser.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < args.wave or args.requests % args.wave:
        parser.error("--requests must be a multiple of --wave")
    if args.child:
        child(args.app, args.requests, args.wave, Path(args.child))
        return 0
    per_request = measure(args.app, args.requests, args.wave)
    say(f"{args.app}: {per_request / 1000:.1f} K instructions per request")
    say(f"({args.requests} requests in waves of {args.wave}, in-process ASGI calls, real Redis)")
    emit("intake_instructions", {"app": args.app, "requests": args.requests, "instructions_per_request": per_request})
    return 0


if __name__ == "__main__":
    sys.exit(main())
