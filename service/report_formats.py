"""The deployment report (`workers.deployment_report`) as JSON, CSV or Markdown; every time in UTC.

JSON is the report's own model. CSV is one row per deployment, with the orchestration in a column and each
list (machines, approvals) in one cell, written by the standard library's `csv`. Markdown is a table per
orchestration, then the notes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:  # `conductor --help` imports this module: only what it needs at run time
    from workers.report_model import DeploymentReport, DeploymentRow

ReportFormat = Literal["markdown", "json", "csv"]
FORMATS: tuple[str, ...] = get_args(ReportFormat)
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "markdown": "text/markdown; charset=utf-8"}
CSV_COLUMNS = (
    "orchestration",
    "deployment",
    "task",
    "project",
    "release",
    "environment",
    "tenant",
    "machines",
    "deployed_by",
    "by_conductor",
    "plan",
    "outcome",
    "reason",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "approvals_relayed",
    "approvals_refused",
    "source",
)
MARKDOWN_COLUMNS = (
    "Queued (UTC)",
    "Project",
    "Release",
    "Environment",
    "Tenant",
    "By",
    "Plan",
    "Outcome",
    "Duration",
    "Approvals relayed",
    "Left to people",
)


def render(report: DeploymentReport, fmt: ReportFormat) -> str:
    renderers: dict[str, Callable[[DeploymentReport], str]] = {"json": as_json, "csv": as_csv, "markdown": as_markdown}
    return renderers[fmt](report)


def as_json(report: DeploymentReport) -> str:
    return report.model_dump_json(indent=2) + "\n"


def as_csv(report: DeploymentReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for group in report.orchestrations:
        for row in group.deployments:
            writer.writerow(
                [
                    group.orchestration,
                    row.deployment_id,
                    row.task_id or "",
                    row.project,
                    row.release,
                    row.environment,
                    row.tenant or "",
                    " ".join(row.machines),
                    row.deployed_by,
                    "true" if row.by_conductor else "false",
                    row.plan or "",
                    row.outcome,
                    row.reason or "",
                    _iso(row.queued_at),
                    _iso(row.started_at),
                    _iso(row.finished_at),
                    "" if row.duration_seconds is None else f"{row.duration_seconds:.3f}",
                    relayed_text(row),
                    refused_text(row),
                    row.source,
                ]
            )
    return out.getvalue()


def as_markdown(report: DeploymentReport) -> str:
    lines = [f"# Deployments from {_minute(report.since)} to {_minute(report.until)} UTC", ""]
    if not report.orchestrations:
        lines += ["No deployments in this window.", ""]
    for group in report.orchestrations:
        lines += [f"## {_cell(group.orchestration)}", ""]
        lines.append("| " + " | ".join(MARKDOWN_COLUMNS) + " |")
        lines.append("|" + "---|" * len(MARKDOWN_COLUMNS))
        for row in group.deployments:
            cells = [
                row.queued_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if row.queued_at else "",
                row.project,
                row.release,
                row.environment + (f" ({', '.join(row.machines)})" if row.machines else ""),
                row.tenant or "",
                row.deployed_by,
                row.plan or "",
                row.outcome + (f": {row.reason}" if row.reason and row.outcome != "Success" else ""),
                duration_text(row.duration_seconds),
                relayed_text(row),
                refused_text(row),
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    if report.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in report.notes] + [""]
    return "\n".join(lines)


def relayed_text(row: DeploymentRow) -> str:
    return "; ".join(f"{item.step}: {item.result} by {item.approver}" for item in row.approvals_relayed)


def refused_text(row: DeploymentRow) -> str:
    return "; ".join(f"{item.step}: {item.reason}" for item in row.approvals_refused)


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _cell(text: str) -> str:
    """A table cell: a pipe or a line break would end the cell or the row."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _iso(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat() if at else ""


def _minute(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
