"""The deployment report's renderers: CSV read back with `csv`, JSON with the report's model, Markdown cells
that a pipe or a line break cannot break, and durations in words."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from service.report_formats import CSV_COLUMNS, as_csv, as_json, as_markdown, duration_text
from workers.report_model import (
    DeploymentReport,
    DeploymentRow,
    OrchestrationDeployments,
    RefusedApproval,
    RelayedApproval,
)

START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
AWKWARD = 'a "quoted", comma | pipe\nand a second line'


def report() -> DeploymentReport:
    row = DeploymentRow(
        deployment_id="Deployments-12",
        task_id="ServerTasks-40",
        project="Web API",
        release="2021.3.0.2",
        environment="Production",
        tenant=None,
        machines=["prod-web-10", "prod-web-11"],
        deployed_by="conductor",
        by_conductor=True,
        plan="plan-3",
        outcome="Failed",
        reason=AWKWARD,
        queued_at=START,
        started_at=START + timedelta(seconds=2),
        finished_at=START + timedelta(seconds=75),
        duration_seconds=73.0,
        approvals_relayed=[
            RelayedApproval(
                step="QA approval", result="Proceed", approver="QA Tester (qa.tester)", covered_by="the parent"
            )
        ],
        approvals_refused=[RefusedApproval(step="DBA approval", reason="no DBA approved")],
        source="conductor records",
    )
    return DeploymentReport(
        since=START - timedelta(hours=1),
        until=START + timedelta(hours=1),
        complete=True,
        orchestrations=[OrchestrationDeployments(orchestration="sample-app", deployments=[row])],
        notes=["a note"],
    )


def test_csv_reads_back_with_the_csv_module() -> None:
    (header, row) = list(csv.reader(io.StringIO(as_csv(report()))))

    assert tuple(header) == CSV_COLUMNS
    values = dict(zip(header, row, strict=True))
    assert values["reason"] == AWKWARD
    assert values["machines"] == "prod-web-10 prod-web-11"
    assert values["approvals_relayed"] == "QA approval: Proceed by QA Tester (qa.tester)"
    assert values["approvals_refused"] == "DBA approval: no DBA approved"
    assert (values["queued_at"], values["duration_seconds"]) == ("2026-12-01T09:30:00+00:00", "73.000")
    assert (values["tenant"], values["by_conductor"]) == ("", "true")


def test_json_is_the_report_itself() -> None:
    original = report()
    assert DeploymentReport.model_validate_json(as_json(original)) == original


def test_markdown_cells_are_escaped_and_the_notes_follow_the_table() -> None:
    lines = as_markdown(report()).splitlines()

    assert lines[0] == "# Deployments from 2026-12-01 08:30 to 2026-12-01 10:30 UTC"
    (row,) = [line for line in lines if line.startswith("| 2026")]
    assert 'Failed: a "quoted", comma \\| pipe and a second line' in row
    assert "| Production (prod-web-10, prod-web-11) |" in row
    assert "| 1 min 13 s |" in row
    assert row.count(" | ") == 10  # eleven cells: the escaped pipe splits none
    assert lines[-3:] == ["Notes:", "", "- a note"]


def test_an_empty_window_says_so() -> None:
    empty = report().model_copy(update={"orchestrations": [], "notes": []})
    assert "No deployments in this window." in as_markdown(empty)
    assert as_csv(empty).splitlines() == [",".join(CSV_COLUMNS)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0.44, "0.4 s"), (9.96, "10.0 s"), (42.4, "42 s"), (60, "1 min 0 s"), (3725, "1 h 2 min")],
)
def test_durations_in_words(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text
