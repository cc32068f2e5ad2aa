"""The plan engine as a promotion runs it: the frozen plan, component after component, for its parent deployment.

Each step's release was chosen when the plan was made (`workers.promotion`); a step only deploys it, carrying
the tenant and prompted values chosen then, and is bound to the parent deployment, so that the parent's
approvals are relayed into exactly these deployments. The limit is the promotion's (`promotion.
deployment_timeout_seconds`, running time). The parent's task is read at each advance: once Octopus has
ended the parent (canceled, failed), the component deployment in flight is canceled and nothing more starts.
At the end the conductor answers the parent's "Deploy the components": Proceed when every component is
deployed or skipped, Abort naming what failed and what was not run.

Before a component deploys, its version requirements are checked (`workers.version_requirements`). With
`on_failure: rollback`, a failed component adds rollback steps to the plan (`workers.rollback`), and the
parent is answered once they have run, saying what was rolled back.
"""

from __future__ import annotations

import structlog

from workers.approval_binding import ApprovalBinding
from workers.directory import Doc
from workers.interruption_answer import answer_interruption
from workers.plan_steps import Limits, PlanSteps
from workers.plans import ParentDeployment, PlanStep
from workers.rollback import (
    add_rollback_steps,
    repeated_deployment,
    rollback_binding,
    rollback_body,
    rollback_summary,
    stop_rolling_back,
)
from workers.version_requirements import check_requirements, running_in_octopus

log = structlog.get_logger("conductor.promotion")

PARENT_ENDED = frozenset({"Canceled", "Cancelling", "Failed", "TimedOut", "Success"})


class PromotionSteps(PlanSteps):
    @property
    def parent(self) -> ParentDeployment | None:
        """The parent deployment the promotion was made for; None for one on demand."""
        return self.plan.parent

    @property
    def parent_ended(self) -> bool:
        return self.parent is not None and self.parent.canceled

    def run(self) -> None:
        if self.plan.status in ("planned", "running"):
            self._look_at_parent()
        parent = self.parent
        if self.plan.status == "planned" and parent is not None and parent.canceled:
            for step in self.plan.steps:
                if not step.finished:
                    step.finish("not_run", f"the parent deployment {parent.deployment_id} ended before it")
            self._finish()
            return
        super().run()
        if self.plan.status in ("succeeded", "failed"):
            self._answer_parent()

    def _limits(self) -> Limits:
        return Limits.of(self.rule.promotion, stop_on_failure=self.rule.stops_on_failure)

    def _look_at_parent(self) -> None:
        """Octopus and the plan agree: a parent that Octopus ended stops the plan."""
        parent = self.parent
        if parent is None or parent.canceled:
            return
        task = self.client.get(f"/api/tasks/{parent.task_id}")
        if task.get("State") in PARENT_ENDED:
            parent.canceled = True
            log.warning("parent deployment ended", plan=self.plan.id, parent=parent.deployment_id)
            self._save()

    def _start(self, step: PlanStep) -> bool:
        if self.parent is not None and self.parent.canceled:
            step.finish("not_run", f"the parent deployment {self.parent.deployment_id} ended before it")
            self._save()
            return True
        return super()._start(step)

    def _decide(self, step: PlanStep) -> Doc | None:
        """Frozen when planned: only the version requirements are checked, now, against what the destination runs.
        A rollback repeats the settings of the deployment it restores."""
        if step.rollback_of is not None:
            return self._template(step)
        component = next((c for c in self.rule.components if c.project == step.project), None)
        if component is not None and component.requires:
            check_requirements(
                component, self.plan, step, running_in_octopus(self.client, self.directory, self.plan, step)
            )
        return None

    def _template(self, step: PlanStep) -> Doc | None:
        if step.rollback_of is None:
            return None
        return repeated_deployment(self.client, self.plan.space_of(step), step.repeats_deployment)

    def _cancel_reason(self, step: PlanStep) -> str | None:
        if self.parent is not None and self.parent.canceled:
            return f"the parent deployment {self.parent.deployment_id} was canceled"
        return super()._cancel_reason(step)

    def _tenant(self, step: PlanStep) -> str | None:
        return step.tenant_id

    def _body(self, step: PlanStep, template: Doc | None) -> Doc:
        if step.rollback_of is not None:
            marker, guided = self._marker(step), self._guided_failure(step)
            return rollback_body(self.plan, step, template, marker=marker, guided_failure=guided)
        parent = self.parent
        position = self.plan.steps.index(step) + 1
        ordered_by = (
            f"for {parent.project} {parent.release_version} ({parent.deployment_id})"
            if parent is not None
            else f"on demand ({self.plan.requested_by or 'unknown'})"
        )
        return {
            "ReleaseId": step.release_id,
            "EnvironmentId": self.plan.environment_of(step),
            "TenantId": step.tenant_id,
            "SpecificMachineIds": list(step.machine_ids),
            "UseGuidedFailure": self._guided_failure(step),
            "ExcludedMachineIds": [],
            "SkipActions": [],
            "FormValues": dict(step.form_values),
            "ForcePackageRedeployment": False,
            "Comments": (
                f"Release Conductor {self._marker(step)}: {step.project} {step.release_version} {ordered_by}, "
                f"component {position} of {len(self.plan.steps)} in the order of orchestration "
                f"{self.plan.orchestration}."
            ),
        }

    def _guided_failure(self, step: PlanStep) -> bool:
        """The project's default, or the environment's where the project defers to it (as the step template does)."""
        assert step.project_id is not None
        space_id = self.plan.space_of(step)
        project = self.directory.project_by_id(space_id, step.project_id)
        mode = project.get("DefaultGuidedFailureMode")
        if mode == "EnvironmentDefault":
            environment = self.directory.environment_by_id(space_id, self.plan.environment_of(step))
            return bool(environment.get("UseGuidedFailure"))
        return mode == "On"

    def _binding(self, step: PlanStep) -> ApprovalBinding:
        """The parent deployment that ordered it covers its approvals; with none, nothing does
        (`workers.approval_cover`). A rollback is bound as a redeploy (`workers.rollback`)."""
        if step.rollback_of is not None:
            return rollback_binding(self.plan, step, marker_name=self._marker_name(step))
        return ApprovalBinding(
            kind="parent" if self.parent is not None else "unattended",
            marker=self._marker_name(step),
            release_id=str(step.release_id),
            environment_id=self.plan.environment_of(step),
            tenant_id=step.tenant_id,
            parent_deployment_id=self.parent.deployment_id if self.parent is not None else None,
            parent_space_id=self.plan.space_id if self.parent is not None else None,
            plan_id=self.plan.id,
        )

    def _failed(self) -> bool:
        return self.parent_ended or super()._failed()

    def _after_failure(self, failed: PlanStep) -> None:
        """With `on_failure: rollback`, a failed component is followed by the rollback of what was deployed; a
        failed rollback ends the plan. A parent that Octopus ended is not rolled back for: left to people."""
        if failed.rollback_of is not None:
            stop_rolling_back(self.plan, failed)
            self._finish()
            return
        if self.rule.rolls_back and not self.parent_ended:
            add_rollback_steps(self.plan, failed)
            self._save()
            return
        super()._after_failure(failed)

    def _ended(self) -> None:
        self._answer_parent()

    def _answer_parent(self) -> None:
        """Answer the parent's deploy step with the outcome, once: the answer is recorded before it is sent."""
        parent = self.parent
        if parent is None or parent.answered or parent.deploy_step_id is None:
            return
        if parent.answer is None:
            failed = [step for step in self.plan.steps if step.status == "failed"]
            parent.answer = "Abort" if failed or parent.canceled else "Proceed"
            parent.answer_notes = outcome_notes(self.plan.steps, canceled=parent.canceled)
            self._save()
        done = answer_interruption(
            self.client,
            self.plan.space_id,
            parent.deploy_step_id,
            result=parent.answer,
            notes=parent.answer_notes or "",
        )
        parent.answered = True
        self._save()
        log.info("parent step answered", plan=self.plan.id, result=parent.answer, outcome=done)


def outcome_notes(steps: list[PlanStep], *, canceled: bool) -> str:
    """What the conductor writes into the parent's deploy step: each component's outcome, failures first, then
    what was rolled back."""
    own = [step for step in steps if step.rollback_of is None]
    failed = [step.project for step in own if step.status == "failed"]
    not_run = [step.project for step in own if step.status == "not_run"]
    if canceled:
        head = "The parent deployment ended before the components were all deployed."
    elif failed:
        head = f"{', '.join(failed)} failed; not deployed: {', '.join(not_run) or 'nothing else'}."
    else:
        head = "Every component is deployed or skipped."
    lines = [head, *rollback_summary(steps), ""]
    for step in steps:
        what = f" {step.release_version}" if step.release_version else ""
        where = f" as {step.deployment_id}" if step.deployment_id else ""
        why = f": {step.reason}" if step.reason else ""
        lines.append(f"- {step.label}{what}{where}: {step.status.replace('_', ' ')}{why}")
    return "\n".join(lines)
