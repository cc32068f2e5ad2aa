"""The `conductor demo` command, added to the CLI through the `release_conductor.commands` entry point."""

from __future__ import annotations

import argparse
import os
import sys


def add_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = commands.add_parser(
        "demo",
        help="play the release-orchestration story against the bundled Octopus simulator, and check it",
        description="Runs the Octopus simulator, the intake (and its live view), a worker, the reconciler and the "
        "promotion scheduler in one process and plays the story in three acts. 1: Release Orchestration 2021.3.0.1 "
        "promotes the components to Staging, then to Production, in order, with the plan and the release notes in "
        "the parent and the parent's approvals relayed into them (the DBAs' step, and a rollback by hand, are left "
        "to people). 2: a new web server in Production receives what Production runs, alone and in order. 3: the "
        "build server puts new releases of Web API and Web UI into Development, and the noon schedule, fired at "
        "once through the scheduler's clock, promotes exactly those to Test. Prints the live view's URL and a read "
        "token made for this run at the start and at the end. Uses CONDUCTOR_REDIS_URL, else a local Redis, else "
        "an in-memory stand-in. Exits non-zero if any part did not happen.",
    )
    demo.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for each step (default 90)")
    demo.add_argument(
        "--keep-serving",
        action="store_true",
        help="after the story, keep the stage (live view, simulator, worker) up until Ctrl-C",
    )
    demo.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from demo.run import run_demo
    from service import logs
    from service.settings import redis_password, redis_url_problem

    configured = os.environ.get("CONDUCTOR_REDIS_URL")
    problem = redis_url_problem(configured) if configured else None
    if problem is not None:
        print(f"conductor demo: CONDUCTOR_REDIS_URL {problem}", file=sys.stderr)
        return 2
    password = redis_password(configured) if configured else None
    logs.configure(level="WARNING", fmt="console", secrets=[password] if password else [])
    try:
        return run_demo(timeout=args.timeout, keep_serving=args.keep_serving)
    except KeyboardInterrupt:  # while the stage comes up or down; the demo's own handler takes it in between
        print("conductor demo: interrupted", file=sys.stderr)
        return 130
