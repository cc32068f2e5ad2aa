"""What the live view shows: the plans in progress and the newest finished ones, component by component,
with the approvals the relay passed on (and who gave them) and the ones it refused, with the reason.

Plain data from the stores' records, so the rendering is tested without HTTP. Only what a person watching
needs: a promotion's prompted values (which may be sensitive) and the relay's submitted notes stay out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from workers.approval_records import ApprovalRelay
from workers.plans import Plan, PlanStep

IN_PROGRESS = ("planned", "running")


@dataclass(frozen=True)
class ApprovalLine:
    """One manual intervention of a component deployment, as the relay left it."""

    step: str
    status: str
    result: str | None
    approver: str | None
    reason: str | None


@dataclass(frozen=True)
class ComponentLine:
    project: str
    state: str
    release: str | None
    from_version: str | None
    deployment_id: str | None
    task_id: str | None
    started_at: datetime | None
    elapsed: str | None
    reason: str | None
    approvals: list[ApprovalLine]
    rollback: bool = False  # a rollback step: `release` is the earlier one it restores, replacing `from_version`


@dataclass(frozen=True)
class PlanCard:
    id: str
    kind: str
    title: str
    status: str
    in_progress: bool
    created_at: datetime
    elapsed: str
    report: str | None
    notes: str | None
    components: list[ComponentLine]


def plans_to_show(in_progress: Iterable[Plan], recent: Iterable[Plan], *, finished_limit: int) -> list[Plan]:
    """Every plan in progress (oldest first), then the newest `finished_limit` finished ones."""
    seen: dict[str, Plan] = {}
    for plan in [*in_progress, *recent]:
        seen.setdefault(plan.id, plan)
    running = sorted((p for p in seen.values() if p.status in IN_PROGRESS), key=lambda p: p.created_at)
    ended = sorted(
        (p for p in seen.values() if p.status not in IN_PROGRESS),
        key=lambda p: p.finished_at or p.created_at,
        reverse=True,
    )
    return [*running, *ended[:finished_limit]]


def plan_cards(plans: Iterable[Plan], relays: Iterable[ApprovalRelay], *, now: datetime) -> list[PlanCard]:
    by_deployment: dict[str, list[ApprovalRelay]] = {}
    for relay in sorted(relays, key=lambda r: r.first_seen_at):
        by_deployment.setdefault(relay.deployment_id, []).append(relay)
    return [_card(plan, by_deployment, now) for plan in plans]


def _card(plan: Plan, relays: dict[str, list[ApprovalRelay]], now: datetime) -> PlanCard:
    parent = plan.parent
    if parent is not None:
        tenant = f" ({parent.tenant})" if parent.tenant else ""
        title = f"{parent.project} {parent.release_version} → {parent.environment}{tenant}"
        if parent.what_if:
            title += " (what-if)"
    elif plan.kind == "promotion":
        title = f"{plan.orchestration} → {plan.environment_id}, on demand ({plan.requested_by or 'unknown'})"
    else:
        machines = len(plan.machine_ids)
        title = f"{plan.orchestration}: {machines} new machine{'' if machines == 1 else 's'} in {plan.environment_id}"
    return PlanCard(
        id=plan.id,
        kind=plan.kind,
        title=title,
        status=plan.status,
        in_progress=plan.status in IN_PROGRESS,
        created_at=plan.created_at,
        elapsed=elapsed(plan.created_at, plan.finished_at, now=now),
        report=plan.report,
        notes=plan.notes,
        components=[_component(step, relays, now) for step in plan.steps],
    )


def _component(step: PlanStep, relays: dict[str, list[ApprovalRelay]], now: datetime) -> ComponentLine:
    found = relays.get(step.deployment_id, []) if step.deployment_id else []
    return ComponentLine(
        project=step.project,
        state=step.status,
        release=step.release_version,
        from_version=step.from_version,
        deployment_id=step.deployment_id,
        task_id=step.task_id,
        started_at=step.started_at,
        elapsed=elapsed(step.started_at, step.finished_at, now=now) if step.started_at else None,
        reason=step.reason,
        approvals=[_approval(relay) for relay in found],
        rollback=step.rollback_of is not None,
    )


def _approval(relay: ApprovalRelay) -> ApprovalLine:
    approver = None
    if relay.covered_by is not None:
        person = relay.covered_by.approver
        approver = f"{person.display_name} ({person.username}, {person.team})"
    return ApprovalLine(
        step=relay.step, status=relay.status, result=relay.result, approver=approver, reason=relay.reason
    )


def elapsed(start: datetime, end: datetime | None, *, now: datetime) -> str:
    """From `start` to `end` (or to `now` while it goes on), as a person reads it: 42 s, 3 min 05 s, 2 h 04 min."""
    seconds = max(0, int(((end or now) - start).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
