"""New deployment target → each component's current release, deployed to that target alone, in order.

A machine event adds the machine to a group per (orchestration, environment, tenant); the group's plan
starts after the gathering window, so machines that arrive together share one deployment per
component. A plan takes its components one at a time (`workers.plan_steps`), under a lock per
(space, project, environment) and one per machine: decide (which release, does it target these
machines, do they have it already), create the deployment, and wait for it to finish: a
DeploymentSucceeded / DeploymentFailed event moves the plan on, and a timer reads the task when no
event came.
"""

from __future__ import annotations

from typing import Any

import structlog

from workers.directory import Directory
from workers.errors import PermanentError
from workers.events import OctopusEvent
from workers.plan_advance import advance_plan
from workers.plan_steps import orchestration_named
from workers.plans import Plan, PlanStep, group_key, parse_group
from workers.redeploy_targets import groups_of, why_not_deployable
from workers.rules import Orchestration
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.redeploy")

START_PLAN_JOB = "workers.jobs.start_plan"


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
    unfit = why_not_deployable(machine)
    if unfit is not None:
        log.info("machine not deployable", machine=machine_id, reason=unfit)
        return {"machine": machine_id, "gathered": [], "reason": unfit}
    gathered = []
    for orchestration, orchestration_space in orchestrations:
        for environment_id, tenant_id in groups_of(client, orchestration_space, machine):
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


def start_plan(group: str, plan_id: str, context: WorkerContext) -> dict[str, Any]:
    """Close the group's gathering and run its plan (again, safely, if this job is retried)."""
    machines = context.plans.take_machines(group, plan_id)
    if not machines:
        return {"plan": None, "reason": "no machines gathered"}
    plan = context.plans.load(plan_id)
    if plan is None:
        orchestration_name, space_id, environment_id, tenant_id = parse_group(group)
        orchestration = orchestration_named(context, orchestration_name)
        plan = Plan(
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


def _orchestrations_for(
    event: OctopusEvent, context: WorkerContext, directory: Directory
) -> list[tuple[Orchestration, str]]:
    matched = []
    for orchestration in context.require_rules().orchestrations:
        if not orchestration.redeploy.enabled or event.Category not in orchestration.redeploy.trigger_categories:
            continue
        # A new target may be in any space the orchestration has components in; its plan deploys those alone.
        spaces = [directory.space_id(space) for space in orchestration.spaces()]
        space_id = event.SpaceId if event.SpaceId in spaces else (spaces[0] if event.SpaceId is None else None)
        if space_id is not None:
            matched.append((orchestration, space_id))
    return matched
