"""The `conductor` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service.cli_options import build_parser
from service.settings import Settings
from workers.redis_url import without_password
from workers.rules import Rules

if TYPE_CHECKING:
    import redis


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "simulator":
        return _simulator(args)
    if getattr(args, "run", None) is not None:  # a command added by entry point (service.cli_options)
        return int(args.run(args))
    try:
        settings = Settings()
    except ValidationError as error:
        print(_settings_error(error), file=sys.stderr)
        return 2
    from service import logs

    logs.configure(level=settings.log_level, fmt=settings.log_format, secrets=settings.secret_texts())
    handler = {
        "serve": _serve,
        "worker": _worker,
        "status": _status,
        "check-rules": _check_rules,
        "reconcile": _reconcile,
        "replay": _replay,
        "promote": _promote,
        "scheduler": _scheduler,
        "report": _report,
    }[args.command]
    import redis

    try:
        return handler(args, settings)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        # Redis went away during a command; long-running ones wait for it instead (workers.redis_wait).
        from workers.redis_wait import unreachable_message

        print(
            f"conductor {args.command}: {unreachable_message(without_password(settings.redis_url), error)}",
            file=sys.stderr,
        )
        return 1


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
    _log().info("intake listening", address=f"http://{args.host}:{args.port}", webhook="/webhooks/octopus")
    # log_config=None: uvicorn's records go through the conductor's logging (JSON, secrets masked).
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning", log_config=None)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.notify_config import notify_settings_problem
    from workers.octopus import OctopusClient, RetryPolicy
    from workers.octopus_check import OctopusMisconfigured, octopus_settings_problem, wait_for_octopus
    from workers.redis_client import connect
    from workers.runner import build_worker

    rules = _rules(settings, "worker")
    problem = octopus_settings_problem(
        url=settings.octopus_url, has_api_key=settings.octopus_api_key is not None, needs_octopus=rules is not None
    )
    if problem is not None:
        print(f"conductor worker: {problem}", file=sys.stderr)
        return 2
    notify_problem = notify_settings_problem(rules, settings.notify_config)
    if notify_problem is not None:
        print(f"conductor worker: {notify_problem}", file=sys.stderr)
        return 2
    connection = connect(settings.redis_url, timeout=max(settings.redis_timeout_seconds, 5.0))
    _wait_for_redis(connection, settings, "worker")
    if settings.octopus_url is not None and settings.octopus_api_key is not None:
        probe = OctopusClient(
            base_url=settings.octopus_url,
            api_key=settings.octopus_api_key.get_secret_value(),
            retry=RetryPolicy(attempts=1),
        )
        try:
            with probe:
                wait_for_octopus(probe, log=_log())
        except OctopusMisconfigured as error:
            print(f"conductor worker: {error}", file=sys.stderr)
            return 2
    _log().info(
        "worker started",
        queue=settings.keys.queue_name,
        redis=without_password(settings.redis_url),
        octopus=settings.octopus_url or "none: only deployment outcomes are handled",
        rules=str(settings.rules) if settings.rules else None,
    )
    worker = build_worker(
        connection=connection,
        keys=settings.keys,
        policy=settings.job_policy,
        rules=rules,
        octopus=settings.octopus_client(),
        retention=settings.retention,
        notify=settings.notify_config,
        connect=lambda: connect(settings.redis_url, timeout=max(settings.redis_timeout_seconds, 5.0)),
    )
    worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
    return 0


def _log() -> Any:
    import structlog

    return structlog.get_logger("conductor.cli")


def _wait_for_redis(connection: redis.Redis, settings: Settings, command: str) -> None:
    """Wait for Redis at start-up, as long as it takes; a refused password stops the command instead."""
    import redis

    from workers.redis_wait import unreachable_message, wait_for_redis

    try:
        wait_for_redis(connection, what=f"conductor {command}", log=_log())
    except redis.AuthenticationError as error:
        print(
            f"conductor {command}: {unreachable_message(without_password(settings.redis_url), error)}", file=sys.stderr
        )
        raise SystemExit(1) from None


def _reachable_redis(settings: Settings, command: str) -> redis.Redis:
    """A connection for a one-shot command, or an exit with the one line that says what to fix."""
    import redis

    from workers.redis_client import connect
    from workers.redis_wait import UNREACHABLE, unreachable_message

    connection = connect(settings.redis_url, timeout=settings.redis_timeout_seconds)
    try:
        connection.ping()
    except (*UNREACHABLE, redis.AuthenticationError) as error:
        print(
            f"conductor {command}: {unreachable_message(without_password(settings.redis_url), error)}", file=sys.stderr
        )
        raise SystemExit(1) from None
    return connection


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli_scheduler import run_scheduler

    return run_scheduler(args, settings)


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli_promote import promote

    _reachable_redis(settings, "promote")
    return promote(args, settings)


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli_report import run_report

    return run_report(args, settings, _reachable_redis(settings, "report"))


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from service import status

    connection = _reachable_redis(settings, "status")
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
    from workers.redis_wait import UNREACHABLE, wait_for_redis

    client = settings.octopus_client()
    if client is None:
        print("conductor reconcile: set CONDUCTOR_OCTOPUS_URL and CONDUCTOR_OCTOPUS_API_KEY", file=sys.stderr)
        return 2
    rules = _rules(settings, "reconcile")
    connection = connect(settings.redis_url, timeout=max(settings.redis_timeout_seconds, 5.0))
    _wait_for_redis(connection, settings, "reconcile")
    queue = settings.event_queue(connection)
    directory = Directory(client)
    locks = Locks(connection, settings.keys.prefix)
    token = uuid.uuid4().hex
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.is_set():
        lock_seconds = int(max(args.every or 0, 30) * 3)
        try:
            if args.every is None or locks.acquire("reconciler", token, ttl_seconds=lock_seconds):
                try:
                    # Every space the rules act in: a component may live in a space of its own.
                    acted_in = [space for item in rules.orchestrations for space in item.spaces()] if rules else []
                    spaces = sorted({directory.space_id(space) for space in acted_in})
                    result = reconcile_once(
                        client=client,
                        queue=queue,
                        connection=connection,
                        categories=handled_categories(rules),
                        spaces=spaces,
                        lookback=timedelta(seconds=settings.reconcile_lookback_seconds),
                        overlap=timedelta(seconds=settings.reconcile_overlap_seconds),
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
        except UNREACHABLE:
            if args.every is None:
                raise
            wait_for_redis(connection, what="reconciler", log=_log())  # then the next pass, on time
        if args.every is None:
            return 0
        stopping.wait(args.every)
    locks.release("reconciler", token)  # the next reconciler need not wait for the lock to expire
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from service.replay import replay_failed

    connection = _reachable_redis(settings, "replay")
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
    if args.offline:
        print(f"{args.file}: valid (syntax and fields; --offline: names not checked in Octopus)")
        return 0
    client = settings.octopus_client()
    if client is None:
        print(
            f"{args.file}: valid, but the names were not checked: set CONDUCTOR_OCTOPUS_URL and "
            "CONDUCTOR_OCTOPUS_API_KEY, or pass --offline for a syntax-only check",
            file=sys.stderr,
        )
        return 2
    with client:
        try:
            problems = unresolved_names(rules, Directory(client))
        except OctopusUnavailable as error:
            why = str(error).removesuffix("; will retry")  # nothing retries here: say what happened
            print(
                f"{args.file}: valid, but the names were not checked: {why}. Run it again once Octopus "
                "answers, or pass --offline for a syntax-only check",
                file=sys.stderr,
            )
            return 1
        except OctopusRequestFailed as error:
            print(f"{args.file}: valid, but the names were not checked: {error}", file=sys.stderr)
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
