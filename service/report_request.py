"""One path from a report request (`since`, `format`) to its text, for `conductor report` and
`GET /reports/deployments` alike: the settings' sources, the window checked, the report built and rendered."""

from __future__ import annotations

from typing import cast

import redis

from service.report_formats import FORMATS, ReportFormat, render
from service.settings import Settings
from workers.deployment_report import ReportSources, build_report
from workers.directory import Directory
from workers.events import utcnow
from workers.report_model import DeploymentReport
from workers.report_window import BadWindow, parse_since
from workers.rules import Rules


class BadReportRequest(ValueError):
    """A `since` or `format` that cannot be answered; the message says what was wrong."""


def report_sources(settings: Settings, connection: redis.Redis, rules: Rules | None) -> ReportSources:
    client = settings.octopus_client()
    return ReportSources(
        connection=connection,
        keys=settings.keys,
        retention=settings.retention,
        rules=rules,
        client=client,
        directory=Directory(client) if client is not None else None,
    )


def checked_format(fmt: str) -> ReportFormat:
    if fmt not in FORMATS:
        raise BadReportRequest(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return cast(ReportFormat, fmt)


def requested_report(sources: ReportSources, *, since: str, fmt: str) -> tuple[DeploymentReport, str]:
    """The report of the deployments created since `since`, and its text in `fmt`. Raises BadReportRequest
    (before anything is read)."""
    chosen = checked_format(fmt)
    now = utcnow()
    try:
        start = parse_since(since, now=now)
    except BadWindow as error:
        raise BadReportRequest(str(error)) from None
    report = build_report(sources, since=start, now=now)
    return report, render(report, chosen)
