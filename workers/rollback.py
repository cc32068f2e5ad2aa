"""Rolling a promotion back (`on_failure: rollback`): when a component fails, the components the promotion had
deployed are redeployed, newest first, with the releases they replaced.

When the plan was made, each step recorded what the destination (and tenant) ran before it: the release and the
deployment that put it there (`from_release_id`, `from_deployment_id`). On a failure the steps not yet run are
not run, and one rollback step per succeeded step is added after the plan's own, in reverse order
(`rollback_of` names the step it takes back). They are real deployments, run by the same engine (locks, limits,
cancel, watch): each repeats the prompted values and skipped steps of the deployment it restores, to the same
machines the promotion deployed to. A component with nothing before it cannot be rolled back, and its rollback
step is skipped saying so. A rollback step that fails is reported and the rest are left to people: rolling an
earlier component back under a later one that could not be is not done on anyone's behalf, and nothing is
tried twice.

Approvals: a rollback deployment is bound as a redeploy is (`workers.approval_binding`, kind `redeploy`): a
person's earlier approval of that very release, environment, tenant and step is reused, else it is left to
people. The parent's approvals, given for the new releases, never count for it.
"""

from __future__ import annotations

from workers.approval_binding import ApprovalBinding
from workers.directory import Doc
from workers.octopus import OctopusClient, OctopusNotFound
from workers.plans import Plan, PlanStep


def add_rollback_steps(plan: Plan, failed: PlanStep) -> None:
    """Stop the plan's own steps after `failed`, and add the rollback of each succeeded one, newest first."""
    for step in plan.steps:
        if not step.finished:
            step.finish("not_run", f"stopped after {failed.project} failed")
    where = _destination(plan)
    deployed = [
        (index, step)
        for index, step in enumerate(plan.steps)
        if step.rollback_of is None and step.status == "succeeded" and step.deployment_id is not None
    ]
    for index, step in reversed(deployed):
        back = PlanStep(
            project=step.project,
            project_id=step.project_id,
            rollback_of=index,
            release_id=step.from_release_id,
            release_version=step.from_version,
            repeats_deployment=step.from_deployment_id,
            from_version=step.release_version,
            tenant_id=step.tenant_id,
            machine_ids=list(step.machine_ids),
            space_id=step.space_id,
            environment_id=step.environment_id,
        )
        if step.from_release_id is None:
            back.finish(
                "skipped",
                f"cannot be rolled back: nothing of {step.project} ran in {where} before {step.release_version}",
            )
        elif step.from_release_id == step.release_id:
            back.finish("skipped", f"{step.release_version} ran in {where} before too: nothing to roll back")
        plan.steps.append(back)


def stop_rolling_back(plan: Plan, failed: PlanStep) -> None:
    """A rollback deployment failed: the rollbacks after it are left to people, never tried on our own."""
    for step in plan.steps:
        if not step.finished:
            step.finish("not_run", f"left to people: the rollback of {failed.project} failed")


def repeated_deployment(client: OctopusClient, space_id: str, deployment_id: str | None) -> Doc | None:
    """The deployment whose settings a rollback repeats; None once Octopus no longer has it (its retention)."""
    if deployment_id is None:
        return None
    try:
        found: Doc = client.get(f"/api/{space_id}/deployments/{deployment_id}")
    except OctopusNotFound:
        return None
    return found


def rollback_body(plan: Plan, step: PlanStep, repeats: Doc | None, *, marker: str, guided_failure: bool) -> Doc:
    """The rollback deployment: the earlier release, with the settings of the deployment that put it there."""
    repeats = repeats or {}
    failed = next((s.project for s in plan.steps if s.rollback_of is None and s.status == "failed"), "a component")
    parent = plan.parent
    ordered_by = (
        f"for {parent.project} {parent.release_version} ({parent.deployment_id})"
        if parent is not None
        else f"on demand ({plan.requested_by or 'unknown'})"
    )
    restores = f" (as deployed in {repeats['Id']})" if repeats.get("Id") else ""
    return {
        "ReleaseId": step.release_id,
        "EnvironmentId": plan.environment_of(step),
        "TenantId": step.tenant_id,
        "SpecificMachineIds": list(step.machine_ids),
        "UseGuidedFailure": guided_failure,
        "ExcludedMachineIds": [],
        "SkipActions": list(repeats.get("SkipActions") or []),
        "FormValues": dict(repeats.get("FormValues") or {}),
        "ForcePackageRedeployment": False,
        "Comments": (
            f"Release Conductor {marker}: rolling {step.project} back from {step.from_version} to "
            f"{step.release_version}{restores} after {failed} failed, {ordered_by}, in the reverse order of "
            f"orchestration {plan.orchestration}."
        ),
    }


def rollback_binding(plan: Plan, step: PlanStep, *, marker_name: str) -> ApprovalBinding:
    """Bound as a redeploy: only a person's earlier approval of this very release counts, never the parent's."""
    return ApprovalBinding(
        kind="redeploy",
        marker=marker_name,
        release_id=str(step.release_id),
        environment_id=plan.environment_of(step),
        tenant_id=step.tenant_id,
        plan_id=plan.id,
    )


def rollback_summary(steps: list[PlanStep]) -> list[str]:
    """What was rolled back, what failed to roll back and what could not be, for the parent's answer."""
    rollbacks = [step for step in steps if step.rollback_of is not None]
    if not rollbacks:
        return []
    done = [f"{s.project} to {s.release_version}" for s in rollbacks if s.status == "succeeded"]
    failed = [f"{s.project} to {s.release_version} ({s.reason})" for s in rollbacks if s.status == "failed"]
    left = [f"{s.project} ({s.reason})" for s in rollbacks if s.status in ("skipped", "not_run")]
    lines = [f"Rolled back: {', '.join(done) or 'nothing'}."]
    if failed:
        lines.append(f"Rollback failed: {'; '.join(failed)}.")
    if left:
        lines.append(f"Not rolled back: {'; '.join(left)}.")
    return lines


def _destination(plan: Plan) -> str:
    return plan.parent.environment if plan.parent is not None else plan.environment_id
