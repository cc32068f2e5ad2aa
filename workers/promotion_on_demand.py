"""A promotion on demand: `conductor promote` and `POST /promotions`, with no parent deployment.

The same choice of releases as at "Plan the release" (`workers.promotion_choice`), the same frozen plan and
the same engine (`workers.promotion_steps`); but nobody approved the release as a whole, so nothing is
approved on anyone's behalf: each component deployment carries an `unattended` binding, and its manual
interventions wait for people. A pattern that is a template of the parent's version limits nothing here.
With `what_if` the plan is made and shown, and nothing is deployed.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from workers.directory import UnknownName
from workers.errors import PermanentError
from workers.events import utcnow
from workers.plan_steps import ADVANCE_PLAN_JOB, render_report
from workers.plans import Plan
from workers.promotion import frozen_steps
from workers.promotion_choice import choose_components
from workers.release_notes import plan_notes
from workers.runtime import WorkerContext


class PromotionRequest(BaseModel):
    """What `conductor promote` and `POST /promotions` ask for."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    orchestration: str = Field(min_length=1, description="the orchestration's name in the rules")
    to: str = Field(min_length=1, description="the destination environment, by name")
    source: str | None = Field(None, alias="from", min_length=1, description="promote from here, by name")
    tenant: str | None = Field(None, min_length=1, description="a tenant, by name")
    what_if: bool = Field(False, description="plan and show, deploy nothing")


def promote_on_demand(request: PromotionRequest, context: WorkerContext, *, requested_by: str) -> Plan:
    """Plan the promotion (and, unless it is what-if, queue its first advance); returns the plan."""
    client, directory = context.octopus_api()
    orchestration = next(
        (item for item in context.require_rules().orchestrations if item.name == request.orchestration), None
    )
    if orchestration is None:
        names = ", ".join(item.name for item in context.require_rules().orchestrations)
        raise PermanentError(f"no orchestration named {request.orchestration!r} in the rules (they name {names})")
    space_id = directory.space_id(orchestration.space)
    try:
        destination = directory.environment(space_id, request.to)
        if request.source is not None:
            directory.environment(space_id, request.source)
            orchestration = orchestration.model_copy(update={"source_environment": request.source})
        tenant = directory.tenant(space_id, request.tenant) if request.tenant else None
    except UnknownName as unknown:
        raise PermanentError(str(unknown)) from None
    choices = choose_components(
        client=client,
        directory=directory,
        space_id=space_id,
        orchestration=orchestration,
        parent_release_version=None,
        destination_environment_id=destination["Id"],
        tenant_id=tenant["Id"] if tenant else None,
    )
    steps = frozen_steps(choices)
    if request.what_if:
        for step in steps:
            if not step.finished:
                step.finish("skipped", "what-if: nothing is deployed")
    failed = any(step.status == "failed" for step in steps)
    plan = Plan(
        id=f"promotion-{uuid.uuid4().hex[:12]}",
        kind="promotion",
        requested_by=requested_by,
        orchestration=orchestration.name,
        space_id=space_id,
        environment_id=destination["Id"],
        tenant_id=tenant["Id"] if tenant else None,
        machine_ids=[],
        steps=steps,
        status="failed" if failed else ("succeeded" if request.what_if else "running"),
        notes=plan_notes(
            choices,
            orchestration=orchestration,
            parent_release_version=None,
            destination=destination["Name"],
            tenant=tenant["Name"] if tenant else None,
        ),
    )
    if plan.status != "running":
        plan.finished_at = utcnow()
        plan.report = render_report(plan)
    context.plans.save(plan)
    if plan.status == "running":
        context.require_scheduler().soon(ADVANCE_PLAN_JOB, plan.id)
    return plan
