"""`conductor report [--since 24h] [--format markdown|json|csv]`: the deployments of a window, per orchestration.

Reads the conductor's records in Redis and, with CONDUCTOR_OCTOPUS_URL and _API_KEY and the rules set,
Octopus's deployments list (people's deployments, and the conductor's own once its records have expired).
The report goes to stdout; a bad `--since` exits 2 saying what was wrong; a report that could not read
Octopus is printed all the same, with a line on stderr that says what it lacks.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from service.report_formats import FORMATS
from service.settings import Settings
from workers.report_window import DEFAULT_SINCE, EXAMPLES

if TYPE_CHECKING:
    import redis


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = commands.add_parser(
        "report",
        help="report the deployments of the last day (or --since), per orchestration",
        description="Lists, per orchestration, every deployment of its projects created in the window: what was "
        "deployed where, by whom (the conductor, with its plan, or a person), the outcome and duration, and the "
        "approvals the conductor relayed and left to people. From the conductor's records, and from Octopus's "
        "deployments list for people's deployments and what the records no longer hold. Needs Redis "
        "(CONDUCTOR_REDIS_URL); Octopus is read with CONDUCTOR_RULES, CONDUCTOR_OCTOPUS_URL and "
        "CONDUCTOR_OCTOPUS_API_KEY set, and the report says what it lacks without them.",
    )
    report.add_argument(
        "--since", default=DEFAULT_SINCE, help=f"where the window starts: {EXAMPLES} (default {DEFAULT_SINCE})"
    )
    report.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default markdown)")


def run_report(args: argparse.Namespace, settings: Settings, connection: redis.Redis) -> int:
    from service.report_request import BadReportRequest, report_sources, requested_report
    from workers.rules import RulesError

    try:
        rules = settings.load_rules()
    except RulesError as error:
        print(f"conductor report: {error}", file=sys.stderr)
        return 2
    sources = report_sources(settings, connection, rules)
    try:
        report, text = requested_report(sources, since=args.since, fmt=args.format)
    except BadReportRequest as error:
        print(f"conductor report: {error}", file=sys.stderr)
        return 2
    finally:
        if sources.client is not None:
            sources.client.close()
    sys.stdout.write(text)
    if not report.complete:
        print(f"conductor report: incomplete: {'; '.join(report.notes)}", file=sys.stderr)
    return 0
