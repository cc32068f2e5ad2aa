"""Orchestrated promotion: a deployment of the parent (orchestration) project drives its components, in order.

The parent's process has two manual interventions owned by the conductor's team:

- at **"Plan the release"** (`promotion.plan_step`), the conductor chooses each component's release
  (`workers.promotion_choice`), freezes that plan, and submits Proceed with the plan and the combined release
  notes (`workers.release_notes`), so that the approvers read them in the parent's task before they approve;
  Abort when a component cannot be planned (`not_found: fail`, a required prompted value missing);
- at **"Deploy the components"** (`promotion.deploy_step`), it runs the frozen plan on the plan engine
  (`workers.promotion_steps`) and answers the step with the outcome.

A process with only the deploy step plans when that step is raised; one with only the plan step (or the rules'
`what_if`) plans, submits the notes and deploys nothing. Other interventions of the parent are the people's.

The plan of a parent deployment is `promotion-<Deployments-n>`: a second event, a retried job or a worker killed
half way finds the same plan, and the conductor's answers are read back before they are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from workers.directory import Directory, Doc
from workers.errors import PermanentError
from workers.events import OctopusEvent
from workers.interruption_answer import answer_interruption
from workers.octopus import OctopusClient, Params
from workers.plan_advance import advance_plan, plan_lock
from workers.plans import ParentDeployment, Plan, PlanStep
from workers.promotion_choice import ComponentChoice, choose_components
from workers.release_notes import plan_notes
from workers.rules import Orchestration
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.promotion")

PROMOTION_STEP_JOB = "workers.jobs.promotion_step"
BUSY_RETRY_SECONDS = 2.0


def on_parent_intervention(event: OctopusEvent, context: WorkerContext) -> dict[str, Any] | None:
    """A manual intervention raised in a parent deployment: plan or deploy at the conductor's steps. None when
    the event is not about a parent project that promotes."""
    deployment_id, project_id = event.related("Deployments-"), event.related("Projects-")
    if deployment_id is None or project_id is None or context.rules is None:
        return None
    client, directory = context.octopus_api()
    found = _promoting(context, directory, event.SpaceId, project_id)
    if found is None:
        return None
    orchestration, space_id = found
    interruption_ids = event.related_all("Interruptions-")
    if not interruption_ids:
        params: Params = {"regarding": deployment_id, "pendingOnly": True}
        interruption_ids = [item["Id"] for item in client.items(f"/api/{space_id}/interruptions", params)]
    steps = [promotion_step(space_id, deployment_id, interruption_id, context) for interruption_id in interruption_ids]
    return {"deployment": deployment_id, "orchestration": orchestration.name, "steps": steps}


def promotion_step(space_id: str, deployment_id: str, interruption_id: str, context: WorkerContext) -> dict[str, Any]:
    """Act at one of the conductor's steps of a parent deployment (or leave the people's steps alone)."""
    client, _ = context.octopus_api()
    interruption = client.get(f"/api/{space_id}/interruptions/{interruption_id}")
    plan_id = f"promotion-{deployment_id}"
    with plan_lock(plan_id, context) as held:
        if not held:
            context.require_scheduler().soon(
                PROMOTION_STEP_JOB, space_id, deployment_id, interruption_id, delay=BUSY_RETRY_SECONDS
            )
            return {"interruption": interruption_id, "deferred": "another worker is moving this promotion"}
        plan = context.plans.load(plan_id)
        deployment: Doc = {}
        if plan is not None:
            orchestration = plan_rule(context, plan)
        else:
            deployment = client.get(f"/api/{space_id}/deployments/{deployment_id}")
            orchestration = _orchestration_of_deployment(context, space_id, deployment)
        rule = orchestration.promotion
        title = str(interruption.get("Title") or "")
        if title not in (rule.plan_step, rule.deploy_step):
            return {"interruption": interruption_id, "reason": f"'{title}' is left to people"}
        plan = plan or _new_plan(plan_id, space_id, deployment, orchestration, context)
        if title == rule.plan_step:
            _answer_plan_step(plan, interruption_id, context)
            return {"interruption": interruption_id, "plan": plan.id, "status": plan.status}
        assert plan.parent is not None
        if plan.parent.deploy_step_id is None:
            plan.parent.deploy_step_id = interruption_id
            if plan.status == "planned":
                plan.status = "running"
            context.plans.save(plan)
    return {"interruption": interruption_id, **advance_plan(plan_id, context)}


def plan_rule(context: WorkerContext, plan: Plan) -> Orchestration:
    for orchestration in context.require_rules().orchestrations:
        if orchestration.name == plan.orchestration:
            return orchestration
    raise PermanentError(f"orchestration {plan.orchestration!r} is no longer in the rules")


def _answer_plan_step(plan: Plan, interruption_id: str, context: WorkerContext) -> None:
    """Submit the plan and its notes at "Plan the release": Abort when a component cannot be planned."""
    parent = plan.parent
    assert parent is not None
    client, _ = context.octopus_api()
    failed = [step.project for step in plan.steps if step.status == "failed"]
    done = answer_interruption(
        client, plan.space_id, interruption_id, result="Abort" if failed else "Proceed", notes=plan.notes or ""
    )
    parent.plan_step_id = interruption_id
    if parent.what_if and plan.status == "planned":
        for step in plan.steps:
            if not step.finished:
                step.finish("skipped", "what-if: nothing is deployed")
        plan.status = "succeeded"
    context.plans.save(plan)
    log.info("release planned", plan=plan.id, parent=parent.deployment_id, failed=failed, outcome=done)


def _orchestration_of_deployment(context: WorkerContext, space_id: str, deployment: Doc) -> Orchestration:
    _, directory = context.octopus_api()
    project = directory.project_by_id(space_id, deployment["ProjectId"])
    return _orchestration_of(context, directory, space_id, project["Name"])


def _new_plan(
    plan_id: str, space_id: str, deployment: Doc, orchestration: Orchestration, context: WorkerContext
) -> Plan:
    """Choose each component's release for this parent deployment and freeze it as a plan."""
    client, directory = context.octopus_api()
    project = directory.project_by_id(space_id, deployment["ProjectId"])
    release = directory.release(space_id, deployment["ReleaseId"])
    environment = directory.environment_by_id(space_id, deployment["EnvironmentId"])
    tenant_id = deployment.get("TenantId") or None
    tenant = directory.tenant_by_id(space_id, tenant_id)["Name"] if tenant_id else None
    choices = choose_components(
        client=client,
        directory=directory,
        space_id=space_id,
        orchestration=orchestration,
        parent_release_version=release["Version"],
        destination_environment_id=environment["Id"],
        tenant_id=tenant_id,
        parent_form_values=_parent_form_values(context, space_id, deployment),
    )
    notes = plan_notes(
        choices,
        orchestration=orchestration,
        parent_release_version=release["Version"],
        destination=environment["Name"],
        tenant=tenant,
    )
    machines = list(deployment.get("SpecificMachineIds") or [])

    def to_the_parents_machines(step: PlanStep) -> None:
        where = step.space_id or space_id, step.environment_id or environment["Id"]  # the component's own space
        _to_the_parents_machines(client, *where, step, machines)

    steps = frozen_steps(choices, narrow=to_the_parents_machines if machines else None)
    failed = [step.project for step in steps if step.status == "failed"]
    plan = Plan(
        id=plan_id,
        kind="promotion",
        parent=ParentDeployment(
            deployment_id=deployment["Id"],
            task_id=deployment["TaskId"],
            project=project["Name"],
            release_version=release["Version"],
            environment=environment["Name"],
            tenant=tenant,
            what_if=orchestration.promotion.what_if or not _has_step(context, space_id, deployment, orchestration),
        ),
        notes=notes,
        orchestration=orchestration.name,
        space_id=space_id,
        environment_id=environment["Id"],
        tenant_id=tenant_id,
        machine_ids=machines,
        steps=steps,
        status="failed" if failed else "planned",
    )
    context.plans.save(plan)
    log.info("promotion planned", plan=plan_id, parent=deployment["Id"], steps=[s.status for s in steps])
    return plan


def frozen_steps(choices: list[ComponentChoice], *, narrow: Callable[[PlanStep], None] | None = None) -> list[PlanStep]:
    """The plan's steps from the choices, frozen: a component that cannot be planned fails, and then nothing
    else of the plan runs. `narrow` may skip or narrow each step further (the parent's machines)."""
    steps = [_step_of(choice) for choice in choices]
    for step in steps:
        if narrow is not None:
            narrow(step)
    failed = [step.project for step in steps if step.status == "failed"]
    for step in steps:
        if failed and not step.finished:
            step.finish("not_run", f"the release cannot be planned: {', '.join(failed)} failed")
    return steps


def _step_of(choice: ComponentChoice) -> PlanStep:
    step = PlanStep(
        project=choice.project,
        project_id=choice.project_id,
        release_id=choice.release_id,
        release_version=choice.release_version,
        tenant_id=choice.tenant_id,
        form_values=dict(choice.form_values),
        from_version=choice.from_version,
        from_release_id=choice.from_release_id,
        from_deployment_id=choice.from_deployment_id,
        notes=choice.notes_markdown or None,
        space_id=choice.space_id,
        environment_id=choice.environment_id,
    )
    if choice.action == "skip":
        step.finish("skipped", choice.reason)
    elif choice.action == "fail":
        step.finish("failed", choice.reason)
    elif choice.reason:
        step.reason = choice.reason
    return step


def _to_the_parents_machines(
    client: OctopusClient, space_id: str, environment_id: str, step: PlanStep, machines: list[str]
) -> None:
    """A parent deployed to specific machines: each component goes to those of them it targets (its preview
    applies its roles, environments and tenants), or is skipped when it targets none of them (§3.6)."""
    if step.finished or step.release_id is None:
        return
    path = f"/api/{space_id}/releases/{step.release_id}/deployments/preview/{environment_id}"
    preview = client.get(path + (f"/{step.tenant_id}" if step.tenant_id else ""))
    targeted = {
        machine["Id"] for action in preview.get("StepsToExecute") or [] for machine in action.get("Machines") or []
    }
    step.machine_ids = [machine for machine in machines if machine in targeted]
    if not step.machine_ids:
        step.finish("skipped", f"no step of {step.project} {step.release_version} targets {', '.join(machines)}")


def _has_step(context: WorkerContext, space_id: str, deployment: Doc, orchestration: Orchestration) -> bool:
    """Whether the parent's process, as this deployment runs it, has the deploy step."""
    _, directory = context.octopus_api()
    process = directory.process(space_id, deployment["DeploymentProcessId"])  # a release's snapshot: it never changes
    names = {str(action.get("Name")) for step in process.get("Steps") or [] for action in step.get("Actions") or []}
    names |= {str(step.get("Name")) for step in process.get("Steps") or []}
    return orchestration.promotion.deploy_step in names


def _parent_form_values(context: WorkerContext, space_id: str, deployment: Doc) -> dict[str, str]:
    """The parent deployment's prompted values by variable name (`Control.Name`), to pass through by name."""
    values = deployment.get("FormValues") or {}
    if not values:
        return {}
    client, _ = context.octopus_api()
    path = f"/api/{space_id}/releases/{deployment['ReleaseId']}/deployments/preview/{deployment['EnvironmentId']}"
    form = client.get(path + (f"/{deployment['TenantId']}" if deployment.get("TenantId") else "")).get("Form") or {}
    named = {}
    for element in form.get("Elements") or []:
        name = (element.get("Control") or {}).get("Name")
        if name and element.get("Name") in values:
            named[str(name)] = str(values[element["Name"]])
    return named


def _promoting(
    context: WorkerContext, directory: Directory, space_id: str | None, project_id: str
) -> tuple[Orchestration, str] | None:
    """The orchestration whose parent project this is, if it promotes, with its space."""
    for orchestration in context.require_rules().orchestrations:
        if not orchestration.promotes:
            continue
        orchestration_space = directory.space_id(orchestration.space)
        if space_id not in (None, orchestration_space):
            continue
        assert orchestration.parent_project is not None
        if directory.project(orchestration_space, orchestration.parent_project)["Id"] == project_id:
            return orchestration, orchestration_space
    return None


def _orchestration_of(context: WorkerContext, directory: Directory, space_id: str, project: str) -> Orchestration:
    for orchestration in context.require_rules().orchestrations:
        parent = orchestration.parent_project
        if orchestration.promotes and parent is not None and parent.casefold() == project.casefold():
            return orchestration
    raise PermanentError(f"no orchestration promotes from {project} in {space_id}")
