"""The summary of an ended plan that notifications carry: JSON for webhooks, plain text for email.

Built from what Redis holds (the plan, the approval relays of its deployments) and the names Octopus gives
ids (through the name cache; an id stands in for a name Octopus cannot give now). The JSON is a Standard
Webhooks payload, `{"type": "plan.ended", "timestamp": ..., "data": {...}}`; README.md documents its fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from workers.approval_records import ApprovalRelay
from workers.directory import Directory
from workers.errors import ConductorError
from workers.plans import Plan, PlanStep


class Named(BaseModel):
    id: str
    name: str


class RelayedApproval(BaseModel):
    step: str
    result: str
    approved_by: str
    approver_display_name: str
    approver_team: str
    given_in: str
    relayed_at: datetime | None


class LeftToPeople(BaseModel):
    step: str
    reason: str


class ComponentOutcome(BaseModel):
    project: str
    release: str | None
    from_release: str | None
    deployment: str | None
    task: str | None
    outcome: str
    reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    approvals_relayed: list[RelayedApproval]
    left_to_people: list[LeftToPeople]


class ParentSummary(BaseModel):
    deployment: str
    project: str
    release: str
    answer: str | None


class PlanSummaryData(BaseModel):
    plan: str
    kind: str
    orchestration: str
    outcome: Literal["succeeded", "failed"]
    space: str
    environment: Named
    tenant: Named | None
    parent: ParentSummary | None
    requested_by: str | None
    machines: list[str]
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    components: list[ComponentOutcome]
    report: str


class PlanSummary(BaseModel):
    type: Literal["plan.ended"] = "plan.ended"
    timestamp: datetime
    data: PlanSummaryData


def summarize(plan: Plan, relays: list[ApprovalRelay], directory: Directory | None) -> PlanSummary:
    """The summary of an ended plan; `relays` may hold records of other deployments (they are left out)."""
    if plan.status not in ("succeeded", "failed") or plan.finished_at is None:
        raise ValueError(f"plan {plan.id} has not ended ({plan.status})")
    by_deployment: dict[str, list[ApprovalRelay]] = {}
    for relay in relays:
        by_deployment.setdefault(relay.deployment_id, []).append(relay)
    parent = plan.parent
    environment = _name(directory, "environment", plan.space_id, plan.environment_id)
    if parent is not None:
        environment = parent.environment
    data = PlanSummaryData(
        plan=plan.id,
        kind=plan.kind,
        orchestration=plan.orchestration,
        outcome=plan.status,
        space=plan.space_id,
        environment=Named(id=plan.environment_id, name=environment),
        tenant=_tenant(plan, directory),
        parent=ParentSummary(
            deployment=parent.deployment_id,
            project=parent.project,
            release=parent.release_version,
            answer=parent.answer,
        )
        if parent is not None
        else None,
        requested_by=plan.requested_by,
        machines=list(plan.machine_ids),
        started_at=plan.created_at,
        finished_at=plan.finished_at,
        duration_seconds=round((plan.finished_at - plan.created_at).total_seconds(), 3),
        components=[_component(step, by_deployment.get(step.deployment_id or "", [])) for step in plan.steps],
        report=plan.report or "",
    )
    return PlanSummary(timestamp=plan.finished_at, data=data)


def _component(step: PlanStep, relays: list[ApprovalRelay]) -> ComponentOutcome:
    duration = None
    if step.started_at is not None and step.finished_at is not None:
        duration = round((step.finished_at - step.started_at).total_seconds(), 3)
    relayed = [
        RelayedApproval(
            step=relay.step,
            result=relay.covered_by.result,
            approved_by=relay.covered_by.approver.username,
            approver_display_name=relay.covered_by.approver.display_name,
            approver_team=relay.covered_by.approver.team,
            given_in=relay.covered_by.deployment_id,
            relayed_at=relay.finished_at,
        )
        for relay in relays
        if relay.status == "relayed" and relay.covered_by is not None
    ]
    left = [
        LeftToPeople(step=relay.step, reason=relay.reason or "left to people")
        for relay in relays
        if relay.status == "refused"
    ]
    return ComponentOutcome(
        project=step.project,
        release=step.release_version,
        from_release=step.from_version,
        deployment=step.deployment_id,
        task=step.task_id,
        outcome=step.status,
        reason=step.reason,
        started_at=step.started_at,
        finished_at=step.finished_at,
        duration_seconds=duration,
        approvals_relayed=relayed,
        left_to_people=left,
    )


def _tenant(plan: Plan, directory: Directory | None) -> Named | None:
    if plan.tenant_id is None:
        return None
    if plan.parent is not None and plan.parent.tenant:
        return Named(id=plan.tenant_id, name=plan.parent.tenant)
    return Named(id=plan.tenant_id, name=_name(directory, "tenant", plan.space_id, plan.tenant_id))


def _name(directory: Directory | None, kind: Literal["environment", "tenant"], space_id: str, doc_id: str) -> str:
    """The document's name, from the name cache; its id when Octopus cannot say now (a summary is not held up)."""
    if directory is None:
        return doc_id
    try:
        doc = (
            directory.environment_by_id(space_id, doc_id)
            if kind == "environment"
            else directory.tenant_by_id(space_id, doc_id)
        )
    except ConductorError:
        return doc_id
    return str(doc.get("Name") or doc_id)


def render_text(summary: PlanSummary) -> tuple[str, str]:
    """The email's subject and plain-text body."""
    data = summary.data
    where = data.environment.name + (f" for {data.tenant.name}" if data.tenant else "")
    what = (
        f"{data.parent.project} {data.parent.release}"
        if data.parent is not None
        else ("new targets " + ", ".join(data.machines) if data.kind == "redeploy" else "on demand")
    )
    subject = f"[Release Conductor] {data.orchestration}: {data.kind} to {where} {data.outcome}"
    lines = [
        f"{data.kind.capitalize()} {data.plan} of {data.orchestration} ({what}) to {where}: {data.outcome}.",
        f"Started {data.started_at:%Y-%m-%d %H:%M:%S} UTC, took {data.duration_seconds:.0f} s.",
    ]
    if data.parent is not None:
        lines.append(f"Parent deployment {data.parent.deployment}, answered {data.parent.answer or 'not yet'}.")
    if data.requested_by:
        lines.append(f"Requested by {data.requested_by}.")
    lines.append("")
    for component in data.components:
        release = f" {component.release}" if component.release else ""
        since = f" (from {component.from_release})" if component.from_release else ""
        lines.append(f"{component.project}{release}{since}: {component.outcome.replace('_', ' ')}")
        if component.deployment:
            took = f", {component.duration_seconds:.0f} s" if component.duration_seconds is not None else ""
            lines.append(f"  deployment {component.deployment}, task {component.task}{took}")
        if component.reason:
            lines.append(f"  why: {component.reason}")
        for approval in component.approvals_relayed:
            lines.append(
                f"  approval relayed at {approval.step!r}: {approval.result} by {approval.approver_display_name} "
                f"({approval.approved_by}, {approval.approver_team}) in {approval.given_in}"
            )
        for left in component.left_to_people:
            lines.append(f"  left to people at {left.step!r}: {left.reason}")
    return subject, "\n".join(lines) + "\n"
