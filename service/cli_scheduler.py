"""`conductor scheduler [--every S]`: fire the rules' promotion schedules (`workers.promotion_schedule`).

It runs until SIGTERM or SIGINT. Any number may run: one acts at a time (a Redis lock), and each fire time
runs once. It waits for Redis when Redis goes away, as the workers do.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

import redis

from service.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    scheduler = commands.add_parser(
        "scheduler",
        help="fire the rules' promotion schedules (one scheduler acts at a time)",
        description="Fires each orchestration's schedules (cron, in their time zone) as promotions the workers "
        "run; a run missed while no scheduler ran is run once within its grace_seconds, else reported missed.",
    )
    scheduler.add_argument("--every", type=float, default=1.0, metavar="SECONDS", help="seconds between ticks (1)")


def run_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    import structlog

    from service.cli_promote import rules_and_octopus
    from workers.promotion_schedule import PromotionScheduler
    from workers.redis_client import connect
    from workers.redis_wait import UNREACHABLE, wait_for_redis

    needed = rules_and_octopus(settings, "scheduler")
    if needed is None:
        return 2
    rules, client = needed
    log = structlog.get_logger("conductor.scheduler")
    connection = connect(settings.redis_url, timeout=max(settings.redis_timeout_seconds, 5.0))
    context = settings.worker_context(connection, rules=rules, octopus=client)
    scheduler = PromotionScheduler(context)
    schedules = sum(len(item.schedules) for item in rules.orchestrations)
    log.info("scheduler started", schedules=schedules, every=args.every, name=scheduler.name)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        while not stopping.is_set():
            try:
                scheduler.tick()
            except UNREACHABLE:
                wait_for_redis(connection, what="scheduler", log=log)
            stopping.wait(args.every)
    finally:
        with contextlib.suppress(redis.RedisError):  # the lock expires within seconds anyway
            scheduler.stop()
    return 0
