"""The `conductor` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from service.settings import Settings
from workers.rules import Rules

DESCRIPTION = """Release Conductor: reacts to Octopus Deploy subscription webhooks.
Configuration comes from CONDUCTOR_* environment variables (see the README)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "simulator":
        return _simulator(args)
    if args.command == "demo":
        from service import logs
        from service.demo import run_demo

        logs.configure(level="WARNING", fmt="console")
        return run_demo(timeout=args.timeout)
    try:
        settings = Settings()
    except ValidationError as error:
        print(_settings_error(error), file=sys.stderr)
        return 2
    from service import logs

    secrets = [s.decode() for s in settings.webhook_secrets()]
    if settings.octopus_api_key is not None:
        secrets.append(settings.octopus_api_key.get_secret_value())
    logs.configure(level=settings.log_level, fmt=settings.log_format, secrets=secrets)
    handler = {
        "serve": _serve,
        "worker": _worker,
        "status": _status,
        "check-rules": _check_rules,
        "reconcile": _reconcile,
        "replay": _replay,
    }[args.command]
    return handler(args, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conductor", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the webhook intake (HTTP)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="accept webhooks without a secret (same as CONDUCTOR_ALLOW_UNAUTHENTICATED=true)",
    )

    worker = commands.add_parser("worker", help="run a worker that handles queued events")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")

    status = commands.add_parser("status", help="show the queue, failed jobs and recent events")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.add_argument("--limit", type=int, default=20, help="how many failed jobs and events (default 20)")

    reconcile = commands.add_parser(
        "reconcile", help="queue the events Octopus's audit log has and the webhooks did not bring"
    )
    reconcile.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep running, reconciling every SECONDS (one reconciler at a time holds a Redis lock)",
    )

    replay = commands.add_parser("replay", help="requeue failed jobs: some events, or every failed one")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("event_ids", nargs="*", default=[], metavar="EVENT_ID", help="e.g. Events-1234")
    which.add_argument("--all-failed", action="store_true", help="every job in the failed registry")

    check = commands.add_parser(
        "check-rules",
        help="validate a rules file; with CONDUCTOR_OCTOPUS_URL set, also resolve every name in Octopus",
    )
    check.add_argument("file", type=Path, help="the rules file (YAML)")

    demo = commands.add_parser(
        "demo",
        help="play the release-orchestration story against the bundled Octopus simulator, and check it",
        description="Runs the simulator, the intake, a worker and the reconciler in one process and plays the "
        "story: a new web server in Production receives Web API then Web UI alone and in order, and approvals "
        "given in the Release Orchestration project are relayed into the components. Uses CONDUCTOR_REDIS_URL, "
        "else a local Redis, else an in-memory stand-in. Exits non-zero if any part did not happen.",
    )
    demo.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for each step (default 90)")

    simulator = commands.add_parser("simulator", help="run the Octopus Deploy simulator")
    simulator.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    simulator.add_argument("--port", type=int, default=8065, help="port to listen on (default 8065)")
    simulator.add_argument("--seed", choices=["sample", "empty"], default="sample", help="initial data")
    simulator.add_argument(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        help="an administrator API key (repeatable)",
    )
    simulator.add_argument(
        "--delivery-interval",
        type=float,
        default=1.0,
        help="seconds between subscription delivery batches (Octopus uses 30; default 1)",
    )
    return parser


def _rules(settings: Settings, command: str) -> Rules | None:
    """The rules file, or an exit with each of its problems."""
    from workers.rules import RulesError

    try:
        return settings.load_rules()
    except RulesError as error:
        print(f"conductor {command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _settings_error(error: ValidationError) -> str:
    lines = ["conductor: configuration error"]
    for problem in error.errors(include_url=False, include_input=False):
        if problem["loc"]:
            lines.append(f"  CONDUCTOR_{str(problem['loc'][0]).upper()}: {problem['msg']}")
        else:
            lines.append(f"  {problem['msg']}")
    return "\n".join(lines)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app, tune_garbage_collector

    if args.allow_unauthenticated:
        settings = settings.model_copy(update={"allow_unauthenticated": True})
    try:
        app = create_app(settings)
    except ValueError as error:
        print(f"conductor serve: {error}", file=sys.stderr)
        return 2
    tune_garbage_collector()
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.redis_client import connect
    from workers.runner import build_worker

    rules = _rules(settings, "worker")
    connection = connect(settings.redis_url, timeout=max(settings.redis_timeout_seconds, 5.0))
    worker = build_worker(
        connection=connection,
        keys=settings.keys,
        policy=settings.job_policy,
        rules=rules,
        octopus=settings.octopus_client(),
    )
    worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from service import status
    from workers.redis_client import connect

    connection = connect(settings.redis_url, timeout=settings.redis_timeout_seconds)
    current = status.read_status(connection, settings.keys, limit=args.limit)
    print(status.as_json(current) if args.json else status.render(current))
    return 0


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    import signal
    import threading
    import uuid
    from datetime import timedelta

    from workers.directory import Directory
    from workers.dispatch import handled_categories
    from workers.locks import Locks
    from workers.octopus import OctopusUnavailable
    from workers.reconciler import reconcile_once
    from workers.redis_client import connect

    client = settings.octopus_client()
    if client is None:
        print("conductor reconcile: set CONDUCTOR_OCTOPUS_URL and CONDUCTOR_OCTOPUS_API_KEY", file=sys.stderr)
        return 2
    rules = _rules(settings, "reconcile")
    connection = connect(settings.redis_url, timeout=max(settings.redis_timeout_seconds, 5.0))
    queue = settings.event_queue(connection)
    directory = Directory(client)
    locks = Locks(connection, settings.keys.prefix)
    token = uuid.uuid4().hex
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.is_set():
        lock_seconds = int(max(args.every or 0, 30) * 3)
        if args.every is None or locks.acquire("reconciler", token, ttl_seconds=lock_seconds):
            try:
                spaces = sorted({directory.space_id(item.space) for item in rules.orchestrations}) if rules else []
                result = reconcile_once(
                    client=client,
                    queue=queue,
                    connection=connection,
                    categories=handled_categories(rules),
                    spaces=spaces,
                    lookback=timedelta(seconds=settings.reconcile_lookback_seconds),
                )
                print(
                    f"read {result.read} events: {result.queued} queued, {result.duplicates} already queued, "
                    f"{result.too_old} older than the dedupe window left alone; cursor {result.cursor}",
                    flush=True,
                )
            except OctopusUnavailable as error:
                print(f"conductor reconcile: {error}", file=sys.stderr, flush=True)
                if args.every is None:
                    return 1
        if args.every is None:
            return 0
        stopping.wait(args.every)
    locks.release("reconciler", token)  # the next reconciler need not wait for the lock to expire
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from service.replay import replay_failed
    from workers.redis_client import connect

    connection = connect(settings.redis_url, timeout=settings.redis_timeout_seconds)
    outcome = replay_failed(connection, settings.keys, event_ids=args.event_ids or None)
    for line in outcome.lines:
        print(line)
    return 0 if outcome.ok else 1


def _check_rules(args: argparse.Namespace, settings: Settings) -> int:
    from workers.directory import Directory
    from workers.octopus import OctopusRequestFailed, OctopusUnavailable
    from workers.rules import RulesError, dotted, line_of, load_rules
    from workers.rules_check import unresolved_names

    try:
        rules = load_rules(args.file)
    except RulesError as error:
        print("\n".join(error.problems), file=sys.stderr)
        return 1
    client = settings.octopus_client()
    if client is None:
        print(f"{args.file}: valid; names not checked (set CONDUCTOR_OCTOPUS_URL and CONDUCTOR_OCTOPUS_API_KEY)")
        return 0
    with client:
        try:
            problems = unresolved_names(rules, Directory(client))
        except OctopusUnavailable as error:
            print(f"{args.file}: valid; names not checked: {error}")
            return 0
        except OctopusRequestFailed as error:
            print(f"{args.file}: valid; names not checked: {error}", file=sys.stderr)
            return 1
    if problems:
        text = args.file.read_text(encoding="utf-8")
        for place, message in problems:
            print(f"{args.file}:{line_of(text, place)}: {dotted(place)}: {message}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid; every name resolves in {settings.octopus_url}")
    return 0


def _simulator(args: argparse.Namespace) -> int:
    from simulator.server import serve

    serve(
        host=args.host,
        port=args.port,
        seed=args.seed,
        api_keys=args.api_keys,
        delivery_interval=args.delivery_interval,
    )
    return 0
