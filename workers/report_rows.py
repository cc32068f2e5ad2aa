"""One row of the deployment report from what each source knows of one deployment: the conductor's records
(its plan step, or the promotion's parent, its relays and outcome) and Octopus's list and task. Octopus's task
gives the outcome and times where it answered, the records where it did not; a row in both sources is one row.
"""

from __future__ import annotations

from datetime import datetime

from workers.approval_answers import when
from workers.approval_records import ApprovalRelay
from workers.directory import Doc
from workers.plans import PlanStep
from workers.report_model import CONDUCTOR, DeploymentRow, RefusedApproval, RelayedApproval
from workers.report_names import Names
from workers.report_octopus import Listed, conductor_plan
from workers.report_records import Planned, Records

# A plan step's status as Octopus's task states say it, for a row whose task Octopus did not answer for.
STEP_OUTCOMES = {
    "creating": "Queued",
    "deploying": "Executing",
    "cancelling": "Cancelling",
    "succeeded": "Success",
    "failed": "Failed",
}


def task_id_of(listed: Listed | None, planned: Planned | None) -> str | None:
    """The deployment's task, as Octopus lists it or as the plan recorded it."""
    if listed is not None:
        return str(listed.deployment.get("TaskId") or "") or None
    if planned is None:
        return None
    if planned.step is not None:
        return planned.step.task_id
    return planned.plan.parent.task_id if planned.plan.parent else None


class DeploymentFacts:
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
        task_id = task_id_of(self.listed, self.planned)
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
