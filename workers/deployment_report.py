"""The deployment report: per orchestration, every deployment of its projects created in a window.

Each row says what was deployed where (project, release, environment, tenant, machines), by whom (the
conductor, with the plan it belonged to, or a person, by Octopus's `DeployedBy`), the outcome and how long
it ran, and the approvals the relay passed on (who, at which step) and left to people (why).

Two sources, merged by deployment id so that a deployment in both is one row:
- the conductor's records (`workers.report_records`): its plans, their steps and the relays; they say which
  deployments are the conductor's and what was approved on whose behalf;
- Octopus's deployments list and tasks (`workers.report_octopus`): people's deployments, which the conductor
  never made, and the conductor's own once its records have expired (the marker in their Comments still
  names the plan); the task's state, start and completion give every row its outcome and duration where
  Octopus answers, the records where it does not.
Without Octopus (not configured, unreachable) the report holds what the records hold and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from workers.directory import Directory, Doc
from workers.errors import ConductorError
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.report_model import DeploymentReport, DeploymentRow, OrchestrationDeployments
from workers.report_names import Names
from workers.report_octopus import Listed, listed_deployments, tasks
from workers.report_records import Records, read_records
from workers.report_rows import DeploymentFacts, task_id_of
from workers.retention import Retention
from workers.rules import Rules


@dataclass(frozen=True)
class ReportSources:
    """Where a report reads from: Redis always; Octopus and the rules when configured."""

    connection: redis.Redis
    keys: RedisKeys
    retention: Retention
    rules: Rules | None
    client: OctopusClient | None
    directory: Directory | None


def build_report(sources: ReportSources, *, since: datetime, now: datetime) -> DeploymentReport:
    """The deployments created from `since` to `now`, per orchestration."""
    notes: list[str] = []
    listed, octopus = _octopus_list(sources, since, notes)
    by_id = {item.deployment["Id"]: item for item in listed}
    records = read_records(sources.connection, sources.keys, since=since, listed=list(by_id))
    ids = sorted(set(by_id) | set(records.deployments), key=_number)
    found_tasks = _tasks(octopus, [task_id_of(by_id.get(i), records.deployments.get(i)) for i in ids], notes)
    names = Names(sources.directory if octopus is not None else None)
    service_account = _service_account(octopus, by_id, records, notes)
    rows: dict[str, list[DeploymentRow]] = {}
    for deployment_id in ids:
        facts = DeploymentFacts(
            deployment_id, by_id.get(deployment_id), records.deployments.get(deployment_id), records
        )
        row = facts.row(names, found_tasks, service_account)
        if row.queued_at is None or row.queued_at >= since:
            rows.setdefault(facts.orchestration, []).append(row)
    expired = sum(1 for group in rows.values() for row in group if row.by_conductor and row.source == "octopus")
    if expired:
        notes.append(
            f"{expired} of the conductor's deployments are no longer in its records (expired or deleted): they "
            "come from Octopus's list, with the plan their Comments name and without the approvals relayed"
        )
    if now - since > timedelta(seconds=sources.retention.seconds):
        kept = now - timedelta(seconds=sources.retention.seconds)
        notes.append(
            f"the conductor keeps its records {_span(sources.retention.seconds)} after they end "
            f"(CONDUCTOR_RETENTION_SECONDS): deployments before {kept:%Y-%m-%d %H:%M} UTC come from Octopus alone"
        )
    order = [item.name for item in sources.rules.orchestrations] if sources.rules else []
    order += sorted(set(rows) - set(order))
    return DeploymentReport(
        since=since,
        until=now,
        complete=octopus is not None,
        orchestrations=[
            OrchestrationDeployments(orchestration=name, deployments=sorted(rows[name], key=_chronological))
            for name in order
            if name in rows
        ],
        notes=notes,
    )


def _octopus_list(
    sources: ReportSources, since: datetime, notes: list[str]
) -> tuple[list[Listed], OctopusClient | None]:
    """Octopus's deployments in the window, and the client when Octopus answered (else None, with a note)."""
    if sources.client is None or sources.directory is None:
        notes.append(
            "no Octopus configured (CONDUCTOR_OCTOPUS_URL, CONDUCTOR_OCTOPUS_API_KEY): only the conductor's records "
            "are listed; people's deployments and durations from Octopus are missing"
        )
        return [], None
    if sources.rules is None:
        notes.append("no rules (CONDUCTOR_RULES): only the conductor's records are listed, not people's deployments")
        return [], None
    try:
        listed, missing = listed_deployments(sources.client, sources.directory, sources.rules, since=since)
    except ConductorError as error:
        why = str(error).removesuffix("; will retry")  # nothing retries a report: say what happened
        notes.append(f"Octopus's deployments could not be read ({why}): only the conductor's records are listed")
        return [], None
    notes += missing
    return listed, sources.client


def _tasks(client: OctopusClient | None, task_ids: list[str | None], notes: list[str]) -> dict[str, Doc]:
    if client is None:
        return {}
    try:
        return tasks(client, [task_id for task_id in task_ids if task_id])
    except ConductorError as error:
        why = str(error).removesuffix("; will retry")
        notes.append(f"Octopus's tasks could not be read ({why}): outcomes and durations are the records'")
        return {}


def _service_account(
    client: OctopusClient | None, listed: dict[str, Listed], records: Records, notes: list[str]
) -> str | None:
    """The service account's user id, needed only to tell the conductor's deployments that its records no
    longer hold from people's."""
    if client is None or all(deployment_id in records.deployments for deployment_id in listed):
        return None
    try:
        return str(client.get("/api/users/me")["Id"])
    except ConductorError as error:
        notes.append(
            f"the service account could not be read ({error}): deployments not in the records count as people's"
        )
        return None


def _span(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit if count > 1 else unit[:-1]}"
    return f"{seconds} s"


def _number(deployment_id: str) -> tuple[int, str]:
    tail = deployment_id.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, deployment_id)


def _chronological(row: DeploymentRow) -> tuple[float, tuple[int, str]]:
    at = row.queued_at.timestamp() if row.queued_at else float("inf")
    return at, _number(row.deployment_id)
