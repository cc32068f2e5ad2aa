"""What a redeploy step deploys: the component's current release in the plan's environment (and tenant),
to those of the plan's machines it targets and that do not have it yet; or why the step is skipped. And
`RedeploySteps`, the plan engine as a redeploy runs it: each step decided when it comes to it, repeating the
settings of the deployment that put the release there."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from workers.approval_binding import ApprovalBinding
from workers.deployment_history import SuccessfulDeployments
from workers.directory import Directory, Doc, UnknownName
from workers.environment_release import environment_release
from workers.octopus import OctopusClient
from workers.plan_steps import Limits, PlanSteps, Skip
from workers.plans import Plan, PlanStep
from workers.rules import ComponentRule, Orchestration


@dataclass
class Decision:
    release: Doc
    machine_ids: list[str]
    repeats: Doc


class RedeploySteps(PlanSteps):
    """A redeploy's steps: the release each environment runs, to the new machines alone."""

    _history: SuccessfulDeployments | None = None

    def _limits(self) -> Limits:
        return Limits.of(self.rule.redeploy, stop_on_failure=self.rule.stops_on_failure)

    def _decide(self, step: PlanStep) -> Doc:
        decision = decide(self.plan, step, self.rule, self.client, self.directory, history=self._history_for(step))
        step.release_id = decision.release["Id"]
        step.release_version = decision.release["Version"]
        step.repeats_deployment = decision.repeats["Id"]
        step.machine_ids = decision.machine_ids
        return decision.repeats

    def _history_for(self, step: PlanStep) -> SuccessfulDeployments | None:
        """What the environment runs, read once for this step and the later ones decided in the same pass (those
        skipped one after the other, then the first that deploys: milliseconds apart). A later step is covered
        only if no other plan held its lock when the list was read: a conductor deployment of that component
        in flight then could finish before the step takes the lock, and the step must see it. Once a deployment
        is created the list is dropped, so a step decided after one ran reads again. A component with a channel
        in the rules reads on its own, with the channel in the request, as far back as it needs."""
        space_id = self.plan.space_id
        channels = {component.project: component.channel for component in self.rule.components}
        if channels.get(step.project):
            return None
        try:
            project_id = self.directory.project(space_id, step.project)["Id"]
        except UnknownName:
            return None  # the decision says so
        history = self._history
        if history is None or not history.covers(project_id, [self.plan.environment_id]):
            later = [other for other in self.plan.steps if other.status == "pending" and other is not step]
            projects = {project_id}
            for other in later:
                if channels.get(other.project):
                    continue
                if self.context.locks.holder(self.plan.lock_name(other)) not in (None, self.plan.id):
                    continue
                with contextlib.suppress(UnknownName):
                    projects.add(self.directory.project(space_id, other.project)["Id"])
            history = self._history = SuccessfulDeployments(
                client=self.client,
                space_id=space_id,
                project_ids=frozenset(projects),
                environment_ids=frozenset([self.plan.environment_id]),
            )
        return history

    def _create(self, step: PlanStep, template: Doc | None) -> bool:
        self._history = None
        return super()._create(step, template)

    def _template(self, step: PlanStep) -> Doc:
        found: Doc = self.client.get(f"/api/{self.plan.space_id}/deployments/{step.repeats_deployment}")
        return found

    def _body(self, step: PlanStep, template: Doc | None) -> Doc:
        repeats = template or {}
        return {
            "ReleaseId": step.release_id,
            "EnvironmentId": self.plan.environment_id,
            "TenantId": self.plan.tenant_id,
            "SpecificMachineIds": step.machine_ids,
            "ExcludedMachineIds": [],
            "SkipActions": list(repeats.get("SkipActions") or []),
            "FormValues": dict(repeats.get("FormValues") or {}),
            "ForcePackageRedeployment": False,
            "Comments": (
                f"Release Conductor {self._marker(step)}: {step.project} {step.release_version} (as last deployed "
                f"successfully in {repeats.get('Id')}) to new target(s) {', '.join(step.machine_ids)} only, in the "
                f"order of orchestration {self.plan.orchestration}."
            ),
        }

    def _binding(self, step: PlanStep) -> ApprovalBinding:
        """A redeploy reuses only an earlier approval of this very release (`workers.approval_cover`)."""
        return ApprovalBinding(
            kind="redeploy",
            marker=self._marker_name(step),
            release_id=str(step.release_id),
            environment_id=self.plan.environment_id,
            tenant_id=self.plan.tenant_id,
            plan_id=self.plan.id,
        )


def decide(
    plan: Plan,
    step: PlanStep,
    rule: Orchestration,
    client: OctopusClient,
    directory: Directory,
    *,
    history: SuccessfulDeployments | None = None,
) -> Decision:
    """Which release of the step's component to deploy, and to which of the plan's machines; raises Skip."""
    space_id, environment_id, tenant_id = plan.space_id, plan.environment_id, plan.tenant_id
    component = next(c for c in rule.components if c.project == step.project)
    if directory.space_id(rule.space_of(component)) != space_id:
        raise Skip(f"{step.project} lives in space {rule.space_of(component)}, not in the new target's ({space_id})")
    project = directory.project(space_id, step.project)
    step.project_id = project["Id"]
    _check_tenancy(directory, space_id, project, environment_id, tenant_id)
    channel_id = directory.channel(space_id, project, component.channel)["Id"] if component.channel else None
    current = environment_release(
        client,
        directory,
        space_id=space_id,
        project=project,
        environment_id=environment_id,
        tenant_id=tenant_id,
        channel_id=channel_id,
        component=component,
        machine_ids=plan.machine_ids,
        history=history,
    )
    if current is None:
        raise Skip(_nothing_to_repeat(plan, directory, project, component))
    release = current.release
    preview_path = f"/api/{space_id}/releases/{release['Id']}/deployments/preview/{environment_id}"
    preview = client.get(preview_path + (f"/{tenant_id}" if tenant_id else ""))
    targeted = {
        machine["Id"]
        for step_preview in preview.get("StepsToExecute", [])
        for machine in step_preview.get("Machines", [])
    }
    machines = [machine for machine in plan.machine_ids if machine in targeted]
    if not machines:
        raise Skip(f"no step of {project['Name']} {release['Version']} targets {', '.join(plan.machine_ids)}")
    if not rule.redeploy.redeploy_when_present:
        present = [machine for machine in machines if machine in current.have_it]
        machines = [machine for machine in machines if machine not in current.have_it]
        if not machines:
            raise Skip(f"{', '.join(present)} already received {project['Name']} {release['Version']}")
    return Decision(release=release, machine_ids=machines, repeats=current.deployment)


def _nothing_to_repeat(plan: Plan, directory: Directory, project: Doc, component: ComponentRule) -> str:
    where = directory.environment_by_id(plan.space_id, plan.environment_id)["Name"]
    limits = [f"channel {component.channel}"] if component.channel else []
    limits += [f"versions {component.release_pattern}"] if component.release_pattern else []
    return f"no successful deployment of {project['Name']} to {where}{_for_tenant(plan, directory)}" + (
        f" within {' and '.join(limits)}" if limits else ""
    )


def _for_tenant(plan: Plan, directory: Directory) -> str:
    if plan.tenant_id is None:
        return ""
    return f" for tenant {directory.tenant_by_id(plan.space_id, plan.tenant_id)['Name']}"


def _check_tenancy(
    directory: Directory, space_id: str, project: Doc, environment_id: str, tenant_id: str | None
) -> None:
    mode = project.get("TenantedDeploymentMode", "Untenanted")
    if tenant_id is None:
        if mode == "Tenanted":
            raise Skip(f"{project['Name']} deploys only for tenants")
        return
    if mode == "Untenanted":
        raise Skip(f"{project['Name']} is not tenanted")
    tenant = directory.tenant_by_id(space_id, tenant_id)
    environments = (tenant.get("ProjectEnvironments") or {}).get(project["Id"])
    if environments is None:
        raise Skip(f"tenant {tenant['Name']} is not connected to {project['Name']}")
    if environment_id not in environments:
        raise Skip(f"tenant {tenant['Name']} does not deploy {project['Name']} to {environment_id}")
