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
from typing import Literal

import redis
from pydantic import BaseModel, Field

from workers.approval_answers import when
from workers.approval_records import ApprovalRelay
from workers.directory import Directory, Doc
from workers.errors import ConductorError
from workers.keys import RedisKeys
from workers.octopus import OctopusClient
from workers.plans import PlanStep
from workers.report_names import Names
from workers.report_octopus import Listed, conductor_plan, listed_deployments, tasks
from workers.report_records import Planned, Records, read_records
from workers.retention import Retention
from workers.rules import Rules

Source = Literal["conductor records", "octopus"]
# A plan step's status as Octopus's task states say it, for a row whose task Octopus did not answer for.
STEP_OUTCOMES = {
    "creating": "Queued",
    "deploying": "Executing",
    "cancelling": "Cancelling",
    "succeeded": "Success",
    "failed": "Failed",
}
CONDUCTOR = "conductor"


class RelayedApproval(BaseModel):
    step: str
    result: str
    approver: str = Field(description="the person whose answer was relayed: display name (username)")
    covered_by: str = Field(description="where that person answered")


class RefusedApproval(BaseModel):
    step: str
    reason: str


class DeploymentRow(BaseModel):
    deployment_id: str
    task_id: str | None
    project: str
    release: str
    environment: str
    tenant: str | None
    machines: list[str] = Field(description="the names of the machines it was limited to (a redeploy), else none")
    deployed_by: str = Field(description=f"'{CONDUCTOR}', or the person Octopus names as DeployedBy")
    by_conductor: bool
    plan: str | None = Field(description="the conductor plan it belonged to (or is the promotion's parent of)")
    outcome: str = Field(description="the task's state: Success, Failed, Canceled, TimedOut, Executing, ...")
    reason: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    approvals_relayed: list[RelayedApproval]
    approvals_refused: list[RefusedApproval]
    source: Source = Field(description="where the row came from: the conductor's records, or Octopus alone")


class OrchestrationDeployments(BaseModel):
    orchestration: str
    deployments: list[DeploymentRow]


class DeploymentReport(BaseModel):
    since: datetime
    until: datetime
    complete: bool = Field(description="false when Octopus could not be read: people's deployments may be missing")
    orchestrations: list[OrchestrationDeployments]
    notes: list[str]


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
    found_tasks = _tasks(octopus, [_task_id(by_id.get(i), records.deployments.get(i)) for i in ids], notes)
    names = Names(sources.directory if octopus is not None else None)
    service_account = _service_account(octopus, by_id, records, notes)
    rows: dict[str, list[DeploymentRow]] = {}
    for deployment_id in ids:
        facts = _Facts(deployment_id, by_id.get(deployment_id), records.deployments.get(deployment_id), records)
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


def _task_id(listed: Listed | None, planned: Planned | None) -> str | None:
    if listed is not None:
        return str(listed.deployment.get("TaskId") or "") or None
    if planned is None:
        return None
    if planned.step is not None:
        return planned.step.task_id
    return planned.plan.parent.task_id if planned.plan.parent else None


class _Facts:
    """Everything known about one deployment, from either source."""

    def __init__(self, deployment_id: str, listed: Listed | None, planned: Planned | None, records: Records) -> None:
        self.deployment_id = deployment_id
        self.listed = listed
        self.planned = planned
        self.doc: Doc = listed.deployment if listed else {}
        self.relays: list[ApprovalRelay] = records.approvals.get(deployment_id, [])
        self.outcome = records.outcomes.get(deployment_id)
        if planned is not None:
            self.orchestration, self.space_id = planned.plan.orchestration, planned.plan.space_id
        else:
            assert listed is not None
            self.orchestration, self.space_id = listed.orchestration, listed.space_id

    @property
    def step(self) -> PlanStep | None:
        return self.planned.step if self.planned else None

    def row(self, names: Names, found_tasks: dict[str, Doc], service_account: str | None) -> DeploymentRow:
        task_id = _task_id(self.listed, self.planned)
        task = found_tasks.get(task_id or "")
        by, by_conductor, plan = self._who(service_account)
        outcome, started, finished = self._ran(task)
        return DeploymentRow(
            deployment_id=self.deployment_id,
            task_id=task_id,
            **self._what(names),
            deployed_by=by,
            by_conductor=by_conductor,
            plan=plan,
            outcome=outcome,
            reason=self._reason(task, outcome),
            queued_at=self._queued_at(),
            started_at=started,
            finished_at=finished,
            duration_seconds=(finished - started).total_seconds() if started and finished else None,
            approvals_relayed=[_relayed(relay) for relay in self.relays if relay.status == "relayed"],
            approvals_refused=[
                RefusedApproval(step=relay.step, reason=relay.reason or "left to people")
                for relay in self.relays
                if relay.status == "refused"
            ],
            source="conductor records" if self.planned else "octopus",
        )

    def _what(self, names: Names) -> dict[str, object]:
        doc, space = self.doc, self.space_id
        parent = self.planned.plan.parent if self.planned and self.step is None else None
        if parent is not None:
            return {
                "project": parent.project,
                "release": parent.release_version,
                "environment": parent.environment,
                "tenant": parent.tenant,
                "machines": self._machines(names, doc.get("SpecificMachineIds")),
            }
        step = self.step
        if step is not None and self.planned is not None:
            plan = self.planned.plan
            # A promotion's step carries its own tenant (none for an untenanted component); a redeploy the plan's.
            own = step.tenant_id or (plan.tenant_id if plan.kind == "redeploy" else None)
            tenant_id = doc.get("TenantId") if doc else own
            # A promotion's parent names its environment and tenant: names even without Octopus.
            parent = plan.parent
            same_tenant = parent is not None and tenant_id == plan.tenant_id
            return {
                "project": step.project,
                "release": step.release_version or names.release(space, step.release_id or ""),
                "environment": parent.environment if parent else names.environment(space, plan.environment_id),
                "tenant": parent.tenant if parent and same_tenant else names.tenant(space, tenant_id),
                "machines": self._machines(names, step.machine_ids),
            }
        return {
            "project": names.project(space, str(doc.get("ProjectId") or "")),
            "release": names.release(space, str(doc.get("ReleaseId") or "")),
            "environment": names.environment(space, str(doc.get("EnvironmentId") or "")),
            "tenant": names.tenant(space, doc.get("TenantId")),
            "machines": self._machines(names, doc.get("SpecificMachineIds")),
        }

    def _machines(self, names: Names, machine_ids: list[str] | None) -> list[str]:
        return [names.machine(self.space_id, machine_id) for machine_id in machine_ids or []]

    def _who(self, service_account: str | None) -> tuple[str, bool, str | None]:
        if self.planned is not None:
            if self.step is not None:
                return CONDUCTOR, True, self.planned.plan.id
            return str(self.doc.get("DeployedBy") or "a person (not recorded)"), False, self.planned.plan.id
        plan = conductor_plan(self.doc, service_account) if service_account else None
        if plan is not None:
            return CONDUCTOR, True, plan
        return str(self.doc.get("DeployedBy") or "unknown"), False, None

    def _ran(self, task: Doc | None) -> tuple[str, datetime | None, datetime | None]:
        """Outcome, start and end: Octopus's task where it answered, else the records'."""
        if task is not None:
            return str(task.get("State") or "unknown"), when(task.get("StartTime")), when(task.get("CompletedTime"))
        step = self.step
        if step is not None:
            outcome = STEP_OUTCOMES.get(step.status, step.status)
            if step.status == "failed" and step.cancel_requested_at is not None:
                outcome = "Canceled"
            return outcome, step.started_at, step.finished_at
        if self.outcome is not None:
            return self.outcome.get("result") or "unknown", None, when(self.outcome.get("occurred"))
        return "unknown", None, None

    def _reason(self, task: Doc | None, outcome: str) -> str | None:
        step = self.step
        if step is not None and step.reason:
            return step.reason
        if self.planned is not None and self.step is None and self.planned.plan.status == "failed":
            return self.planned.plan.report
        if task is not None and outcome != "Success":
            return str(task.get("ErrorMessage") or "") or None
        return None

    def _queued_at(self) -> datetime | None:
        created = when(self.doc.get("Created"))
        if created is not None:
            return created
        if self.step is not None:
            return self.step.started_at
        return self.planned.plan.created_at if self.planned else None


def _relayed(relay: ApprovalRelay) -> RelayedApproval:
    cover = relay.covered_by
    if cover is None:
        return RelayedApproval(step=relay.step, result=relay.result or "", approver="unknown", covered_by="unknown")
    tenant = f" for {cover.tenant}" if cover.tenant else ""
    return RelayedApproval(
        step=relay.step,
        result=relay.result or cover.result,
        approver=f"{cover.approver.display_name} ({cover.approver.username})",
        covered_by=f"{cover.project} {cover.release_version} to {cover.environment}{tenant} ({cover.deployment_id})",
    )


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
