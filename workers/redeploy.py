"""New deployment target → each component's current release, deployed to that target alone, in order.

A machine event adds the machine to a group per (orchestration, environment, tenant); the group's plan
starts after the gathering window, so machines that arrive together share one deployment per
component. A plan takes its components one at a time, under a lock per (space, project, environment):
decide (which release, does it target these machines, do they have it already), create the deployment,
and wait for it to finish: a DeploymentSucceeded / DeploymentFailed event moves the plan on, and a
timer reads the task when no event came.

Every step is written to Redis before it acts, and a deployment is found again by the marker in its
comments, so a retried job or a restarted worker never creates a second deployment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from workers.directory import Directory, Doc
from workers.errors import PermanentError
from workers.events import OctopusEvent, utcnow
from workers.octopus import OctopusRequestFailed
from workers.outcomes import read_deployment_outcome
from workers.redeploy_plan import PlanStep, RedeployPlan, group_key, parse_group
from workers.rules import ComponentRule, Orchestration
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.redeploy")

START_PLAN_JOB = "workers.jobs.start_plan"
ADVANCE_PLAN_JOB = "workers.jobs.advance_plan"
UNDEPLOYABLE_HEALTH = frozenset({"Unhealthy", "Unavailable"})
SUCCESSFUL_DEPLOYMENTS_SCANNED = 300
PLAN_LOCK_SECONDS = 120
TIMER_LOST_AFTER = timedelta(seconds=60)


def on_machine_event(event: OctopusEvent, context: WorkerContext) -> dict[str, Any]:
    """A machine was added, found healthy or enabled: gather it into the plans it belongs to."""
    machine_id = event.related("Machines-")
    if machine_id is None:
        raise PermanentError(f"{event.Id}: {event.Category} names no Machines- document")
    client, directory = context.octopus_api()
    orchestrations = _orchestrations_for(event, context, directory)
    if not orchestrations:
        return {"machine": machine_id, "gathered": [], "reason": "no orchestration is triggered by this event"}
    space_id = orchestrations[0][1]
    machine = client.get(f"/api/{space_id}/machines/{machine_id}")
    unfit = _why_not_deployable(machine)
    if unfit is not None:
        log.info("machine not deployable", machine=machine_id, reason=unfit)
        return {"machine": machine_id, "gathered": [], "reason": unfit}
    gathered = []
    for orchestration, orchestration_space in orchestrations:
        for environment_id, tenant_id in _groups_of(machine):
            group = group_key(orchestration.name, orchestration_space, environment_id, tenant_id)
            window = orchestration.redeploy.group_window_seconds
            plan_id, must_schedule = context.plans.gather(group, machine_id, event.Id, hold_seconds=window)
            if plan_id is not None and must_schedule:
                if window <= 0:
                    start_plan(group, plan_id, context)
                else:
                    context.require_scheduler().soon(START_PLAN_JOB, group, plan_id, delay=window)
            gathered.append({"group": group, "plan": plan_id})
    return {"machine": machine_id, "gathered": gathered}


def on_deployment_finished(deployment_id: str, context: WorkerContext) -> str | None:
    """Move on the plan waiting for this deployment, if any; returns its id."""
    plan_id = context.plans.plan_for_deployment(deployment_id)
    if plan_id is not None:
        advance_plan(plan_id, context)
    return plan_id


def start_plan(group: str, plan_id: str, context: WorkerContext) -> dict[str, Any]:
    """Close the group's gathering and run its plan (again, safely, if this job is retried)."""
    machines = context.plans.take_machines(group, plan_id)
    if not machines:
        return {"plan": None, "reason": "no machines gathered"}
    plan = context.plans.load(plan_id)
    if plan is None:
        orchestration_name, space_id, environment_id, tenant_id = parse_group(group)
        orchestration = _orchestration(context, orchestration_name)
        plan = RedeployPlan(
            id=plan_id,
            orchestration=orchestration_name,
            space_id=space_id,
            environment_id=environment_id,
            tenant_id=tenant_id,
            machine_ids=machines,
            steps=[PlanStep(project=component.project) for component in orchestration.components],
        )
        context.plans.save(plan)
        log.info("plan started", plan=plan_id, machines=machines, environment=environment_id, tenant=tenant_id)
    return advance_plan(plan_id, context)


def advance_plan(plan_id: str, context: WorkerContext, *, timer: str | None = None) -> dict[str, Any]:
    """Take the plan as far as it can go now. Safe to call at any time, any number of times.
    `timer` names the timer job that called, so that the plan knows its timer has fired."""
    token = uuid.uuid4().hex
    lock = f"plan:{plan_id}"
    if not context.locks.acquire(lock, token, ttl_seconds=PLAN_LOCK_SECONDS):
        context.require_scheduler().soon(ADVANCE_PLAN_JOB, plan_id, delay=1.0)
        return {"plan": plan_id, "deferred": "another worker is moving this plan"}
    try:
        plan = context.plans.load(plan_id)
        if plan is None:
            raise PermanentError(f"plan {plan_id} does not exist")
        if timer is not None and plan.timer == timer:
            plan.timer = None
        _Advance(plan, context).run()
        return {"plan": plan.id, "status": plan.status, "steps": [step.status for step in plan.steps]}
    finally:
        context.locks.release(lock, token)


@dataclass
class _Decision:
    release: Doc
    machine_ids: list[str]
    repeats: Doc
    skipped_machines: list[str] = field(default_factory=list)


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Advance:
    def __init__(self, plan: RedeployPlan, context: WorkerContext) -> None:
        self.plan = plan
        self.context = context
        self.client, self.directory = context.octopus_api()
        self.rule = _orchestration(context, plan.orchestration)

    def run(self) -> None:
        while self.plan.status == "running":
            step = self.plan.current_step()
            if step is None:
                self._finish()
                return
            if not self._move(step):
                return

    def _move(self, step: PlanStep) -> bool:
        """One transition of the current step; False when the plan must wait."""
        if step.status == "pending":
            lock = self.plan.lock_name(step)
            if not self.context.locks.acquire(lock, self.plan.id, ttl_seconds=self._lock_seconds()):
                self.context.locks.wait(lock, self.plan.id, at=utcnow().timestamp())
                self._check_later(self.rule.redeploy.task_check_seconds)
                return False
            try:
                decision = self._decide(step)
            except _Skip as skip:
                step.finish("skipped", skip.reason)
                self._release(step)
                self._save()
                return True
            step.status = "creating"
            step.started_at = utcnow()
            step.release_id = decision.release["Id"]
            step.release_version = decision.release["Version"]
            step.repeats_deployment = decision.repeats["Id"]
            step.machine_ids = decision.machine_ids
            self._save()
            return self._create(step, decision.repeats, resuming=False)
        if step.status == "creating":
            # An earlier attempt stopped between recording its intent and recording the deployment.
            repeats = self.client.get(f"/api/{self.plan.space_id}/deployments/{step.repeats_deployment}")
            return self._create(step, repeats, resuming=True)
        return self._watch(step)

    def _decide(self, step: PlanStep) -> _Decision:
        space_id, environment_id, tenant_id = self.plan.space_id, self.plan.environment_id, self.plan.tenant_id
        component = next(c for c in self.rule.components if c.project == step.project)
        project = self.directory.project(space_id, step.project)
        step.project_id = project["Id"]
        _check_tenancy(self.directory, space_id, project, environment_id, tenant_id)
        successful, release, have_it = self._last_successful(project, component)
        preview_path = f"/api/{space_id}/releases/{release['Id']}/deployments/preview/{environment_id}"
        preview = self.client.get(preview_path + (f"/{tenant_id}" if tenant_id else ""))
        targeted = {
            machine["Id"]
            for step_preview in preview.get("StepsToExecute", [])
            for machine in step_preview.get("Machines", [])
        }
        machines = [machine for machine in self.plan.machine_ids if machine in targeted]
        if not machines:
            raise _Skip(f"no step of {project['Name']} {release['Version']} targets {', '.join(self.plan.machine_ids)}")
        if not self.rule.redeploy.redeploy_when_present:
            present = [machine for machine in machines if machine in have_it]
            machines = [machine for machine in machines if machine not in have_it]
            if not machines:
                raise _Skip(f"{', '.join(present)} already received {project['Name']} {release['Version']}")
        return _Decision(release=release, machine_ids=machines, repeats=successful)

    def _last_successful(self, project: Doc, component: ComponentRule) -> tuple[Doc, Doc, set[str]]:
        """The newest successful deployment to this environment (and tenant) within the component's channel
        and pattern, its release, and the machines that already received that release."""
        space_id = self.plan.space_id
        channel_id = self.directory.channel(space_id, project, component.channel)["Id"] if component.channel else None
        params = {
            "projects": project["Id"],
            "environments": self.plan.environment_id,
            "tenants": self.plan.tenant_id,
            "taskState": "Success",
        }
        chosen: tuple[Doc, Doc] | None = None
        have_it: set[str] = set()
        seen = 0
        for deployment in self.client.items(
            f"/api/{space_id}/deployments", params, limit=SUCCESSFUL_DEPLOYMENTS_SCANNED
        ):
            seen += 1
            if deployment.get("TenantId") != self.plan.tenant_id:
                continue
            if chosen is None:
                if channel_id is not None and deployment.get("ChannelId") != channel_id:
                    continue
                release = self.directory.release(space_id, deployment["ReleaseId"])
                if not component.matches_version(release["Version"]):
                    continue
                chosen = (deployment, release)
            if deployment["ReleaseId"] == chosen[1]["Id"]:
                have_it.update(deployment.get("DeployedToMachineIds") or [])
            if seen >= 100:
                break  # the release's earlier deployments are within the first page in practice
        if chosen is None:
            where = self.directory.environment_by_id(space_id, self.plan.environment_id)["Name"]
            limits = [f"channel {component.channel}"] if component.channel else []
            limits += [f"versions {component.release_pattern}"] if component.release_pattern else []
            raise _Skip(
                f"no successful deployment of {project['Name']} to {where}{self._for_tenant()}"
                + (f" within {' and '.join(limits)}" if limits else "")
            )
        return chosen[0], chosen[1], have_it

    def _create(self, step: PlanStep, repeats: Doc, *, resuming: bool) -> bool:
        index = self.plan.steps.index(step)
        marker = f"[conductor {self.plan.id}/{index}]"
        existing = self._find_created(step, marker) if resuming else None
        if existing is None:
            body = {
                "ReleaseId": step.release_id,
                "EnvironmentId": self.plan.environment_id,
                "TenantId": self.plan.tenant_id,
                "SpecificMachineIds": step.machine_ids,
                "ExcludedMachineIds": [],
                "SkipActions": list(repeats.get("SkipActions") or []),
                "FormValues": dict(repeats.get("FormValues") or {}),
                "ForcePackageRedeployment": False,
                "Comments": (
                    f"Release Conductor {marker}: {step.project} {step.release_version} (as last deployed successfully "
                    f"in {repeats['Id']}) to new target(s) {', '.join(step.machine_ids)} only, in the order of "
                    f"orchestration {self.plan.orchestration}."
                ),
            }
            try:
                existing = self.client.post(f"/api/{self.plan.space_id}/deployments", body)
            except OctopusRequestFailed as refused:
                step.finish("failed", f"Octopus refused the deployment: {refused}")
                self._release(step)
                self._after_failure(step)
                self._save()
                return self.plan.status == "running"
        step.status = "deploying"
        step.deployment_id = existing["Id"]
        step.task_id = existing["TaskId"]
        self._save()
        log.info(
            "deployment created",
            plan=self.plan.id,
            project=step.project,
            deployment=step.deployment_id,
            release=step.release_version,
            machines=step.machine_ids,
        )
        self._check_later(self.rule.redeploy.task_check_seconds)
        return False

    def _find_created(self, step: PlanStep, marker: str) -> Doc | None:
        """The deployment an earlier attempt of this step created, if it got that far."""
        params = {"projects": step.project_id, "environments": self.plan.environment_id, "tenants": self.plan.tenant_id}
        for deployment in self.client.items(f"/api/{self.plan.space_id}/deployments", params, limit=50):
            if marker in (deployment.get("Comments") or ""):
                return dict(deployment)
        return None

    def _watch(self, step: PlanStep) -> bool:
        assert step.deployment_id is not None
        assert step.task_id is not None
        recorded = read_deployment_outcome(self.context, step.deployment_id)
        if recorded is not None:
            state, error = recorded["result"], ""
        else:
            task = self.client.get(f"/api/tasks/{step.task_id}")
            state, error = (task["State"] if task.get("IsCompleted") else "Executing"), task.get("ErrorMessage") or ""
        if state in ("Queued", "Executing", "Cancelling"):
            started = step.started_at or utcnow()
            if utcnow() - started > timedelta(seconds=self.rule.redeploy.deployment_timeout_seconds):
                step.finish(
                    "failed",
                    f"{step.deployment_id} did not finish within {self.rule.redeploy.deployment_timeout_seconds} s",
                )
            else:
                self.context.locks.extend(self.plan.lock_name(step), self.plan.id, ttl_seconds=self._lock_seconds())
                self._check_later(self.rule.redeploy.task_check_seconds)
                self._save()
                return False
        elif state == "Success":
            step.finish("succeeded", None)
        else:
            step.finish("failed", f"{step.deployment_id} ended {state}" + (f": {error}" if error else ""))
        self._release(step)
        if step.status == "failed":
            self._after_failure(step)
        self._save()
        return self.plan.status == "running"

    def _after_failure(self, failed: PlanStep) -> None:
        if not self.rule.redeploy.stop_on_failure:
            return
        for step in self.plan.steps:
            if not step.finished:
                step.finish("not_run", f"stopped after {failed.project} failed")
        self._finish()

    def _finish(self) -> None:
        plan = self.plan
        plan.status = "failed" if any(step.status == "failed" for step in plan.steps) else "succeeded"
        plan.finished_at = utcnow()
        plan.check_due = None
        plan.timer = None
        plan.report = render_report(plan)
        self._save()
        log.info("plan finished", plan=plan.id, status=plan.status, report=plan.report)

    def _release(self, step: PlanStep) -> None:
        for waiter in self.context.locks.release(self.plan.lock_name(step), self.plan.id):
            if waiter != self.plan.id:
                self.context.require_scheduler().soon(ADVANCE_PLAN_JOB, waiter)

    def _check_later(self, seconds: float) -> None:
        """One pending timer per plan is enough: events move it on sooner. A timer that should have fired
        long ago was lost with its worker, and is replaced."""
        now = utcnow()
        due = self.plan.check_due
        if self.plan.timer is not None and due is not None and due > now - TIMER_LOST_AFTER:
            return
        self.plan.timer = uuid.uuid4().hex
        self.plan.check_due = now + timedelta(seconds=seconds)
        self._save()
        self.context.require_scheduler().soon(ADVANCE_PLAN_JOB, self.plan.id, self.plan.timer, delay=seconds)

    def _lock_seconds(self) -> int:
        return self.rule.redeploy.deployment_timeout_seconds + 600

    def _save(self) -> None:
        self.context.plans.save(self.plan)

    def _for_tenant(self) -> str:
        if self.plan.tenant_id is None:
            return ""
        return f" for tenant {self.directory.tenant_by_id(self.plan.space_id, self.plan.tenant_id)['Name']}"


def render_report(plan: RedeployPlan) -> str:
    lines = [
        f"{plan.id} ({plan.orchestration}) to {', '.join(plan.machine_ids)} in {plan.environment_id}"
        + (f" for {plan.tenant_id}" if plan.tenant_id else "")
        + f": {plan.status}"
    ]
    for step in plan.steps:
        what = f"{step.release_version} as {step.deployment_id}" if step.deployment_id else ""
        lines.append(
            f"  {step.project}: {step.status}"
            + (f" {what}" if what else "")
            + (f" ({step.reason})" if step.reason else "")
        )
    failed = [step.project for step in plan.steps if step.status == "failed"]
    not_run = [step.project for step in plan.steps if step.status == "not_run"]
    if failed:
        lines.append(f"  failed: {', '.join(failed)}; not deployed: {', '.join(not_run) or 'nothing else'}")
    return "\n".join(lines)


def _orchestration(context: WorkerContext, name: str) -> Orchestration:
    for orchestration in context.require_rules().orchestrations:
        if orchestration.name == name:
            return orchestration
    raise PermanentError(f"orchestration {name!r} is no longer in the rules")


def _orchestrations_for(
    event: OctopusEvent, context: WorkerContext, directory: Directory
) -> list[tuple[Orchestration, str]]:
    matched = []
    for orchestration in context.require_rules().orchestrations:
        if not orchestration.redeploy.enabled or event.Category not in orchestration.redeploy.trigger_categories:
            continue
        space_id = directory.space_id(orchestration.space)
        if event.SpaceId in (None, space_id):
            matched.append((orchestration, space_id))
    return matched


def _why_not_deployable(machine: Doc) -> str | None:
    if machine.get("IsDisabled"):
        return f"{machine['Name']} is disabled"
    if machine.get("HealthStatus") in UNDEPLOYABLE_HEALTH:
        return f"{machine['Name']} is {machine['HealthStatus']}"
    return None


def _groups_of(machine: Doc) -> list[tuple[str, str | None]]:
    """(environment, tenant) pairs a machine can be deployed to, by its tenanted participation."""
    participation = machine.get("TenantedDeploymentParticipation")
    tenants: list[str] = list(machine.get("TenantIds") or [])
    if participation is None:  # servers older than the field: derived as the .NET client does
        participation = "Tenanted" if tenants or machine.get("TenantTags") else "Untenanted"
    options: list[str | None] = []
    if participation in ("Untenanted", "TenantedOrUntenanted"):
        options.append(None)
    if participation in ("Tenanted", "TenantedOrUntenanted"):
        options.extend(tenants)
    return [(environment, tenant) for environment in machine.get("EnvironmentIds", []) for tenant in options]


def _check_tenancy(
    directory: Directory, space_id: str, project: Doc, environment_id: str, tenant_id: str | None
) -> None:
    mode = project.get("TenantedDeploymentMode", "Untenanted")
    if tenant_id is None:
        if mode == "Tenanted":
            raise _Skip(f"{project['Name']} deploys only for tenants")
        return
    if mode == "Untenanted":
        raise _Skip(f"{project['Name']} is not tenanted")
    tenant = directory.tenant_by_id(space_id, tenant_id)
    environments = (tenant.get("ProjectEnvironments") or {}).get(project["Id"])
    if environments is None:
        raise _Skip(f"tenant {tenant['Name']} is not connected to {project['Name']}")
    if environment_id not in environments:
        raise _Skip(f"tenant {tenant['Name']} does not deploy {project['Name']} to {environment_id}")
