"""The `conductor` command's sub-commands and options (what `--help` shows)."""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path

from service import cli_promote, cli_report, cli_scheduler

# Sub-commands that other packages of the distribution add (the demo, `demo.command`), found by entry point so
# that service/ imports none of them. Each is a callable taking the sub-parsers; it sets `run` on its parser.
COMMANDS_ENTRY_POINT = "release_conductor.commands"
DESCRIPTION = """Release Conductor: reacts to Octopus Deploy subscription webhooks.
Configuration comes from CONDUCTOR_* environment variables (see the README)."""


def version() -> str:
    try:
        return metadata.version("release-conductor")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conductor", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the webhook intake (HTTP)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="accept webhooks without a secret (same as CONDUCTOR_ALLOW_UNAUTHENTICATED=true)",
    )

    worker = commands.add_parser("worker", help="run a worker that handles queued events and notification deliveries")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")

    status = commands.add_parser(
        "status",
        help="show the queue, failed jobs, plans, approval relays, stuck deployments, the schedules' recent and "
        "missed runs, notifications and recent events",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.add_argument("--limit", type=int, default=20, help="how many of each (default 20)")

    reconcile = commands.add_parser(
        "reconcile", help="queue the events Octopus's audit log has and the webhooks did not bring"
    )
    reconcile.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="keep running, reconciling every SECONDS (one reconciler at a time holds a Redis lock)",
    )

    cli_promote.add_parser(commands)
    cli_scheduler.add_parser(commands)
    cli_report.add_parser(commands)

    replay = commands.add_parser("replay", help="requeue failed jobs: some events, or every failed one")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("event_ids", nargs="*", default=[], metavar="EVENT_ID", help="e.g. Events-1234")
    which.add_argument("--all-failed", action="store_true", help="every job in the failed registry")

    check = commands.add_parser(
        "check-rules",
        help="validate a rules file and resolve every name in it in Octopus (CONDUCTOR_OCTOPUS_URL and _API_KEY)",
    )
    check.add_argument("file", type=Path, help="the rules file (YAML)")
    check.add_argument("--offline", action="store_true", help="check the file's syntax and fields only, not the names")

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
    for entry in sorted(metadata.entry_points(group=COMMANDS_ENTRY_POINT), key=lambda item: item.name):
        entry.load()(commands)
    return parser
