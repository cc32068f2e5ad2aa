"""Moving a plan on, whatever planner made it: under the plan's own lock, by its kind's steps.

Events (a deployment finished), timers and the sweep all come here; it is safe to call at any time, any
number of times.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from workers.errors import PermanentError
from workers.notifications import notify_plan_end
from workers.plan_steps import ADVANCE_PLAN_JOB, PlanSteps
from workers.plans import Plan
from workers.promotion_steps import PromotionSteps
from workers.redeploy_decision import RedeploySteps
from workers.runtime import WorkerContext

PLAN_LOCK_SECONDS = 120
STEPS: dict[str, type[PlanSteps]] = {"redeploy": RedeploySteps, "promotion": PromotionSteps}


def advance_plan(plan_id: str, context: WorkerContext, *, timer: str | None = None) -> dict[str, Any]:
    """Take the plan as far as it can go now. `timer` names the timer job that called, so that the plan knows
    its timer has fired."""
    with plan_lock(plan_id, context) as held:
        if not held:
            context.require_scheduler().soon(ADVANCE_PLAN_JOB, plan_id, delay=1.0)
            return {"plan": plan_id, "deferred": "another worker is moving this plan"}
        plan = context.plans.load(plan_id)
        if plan is None:
            raise PermanentError(f"plan {plan_id} does not exist")
        if timer is not None and plan.timer == timer:
            plan.timer = None
        steps_of(plan, context).run()
        notify_plan_end(plan, context)  # once per plan end; its deliveries run apart, the plan never waits
        return {"plan": plan.id, "status": plan.status, "steps": [step.status for step in plan.steps]}


def steps_of(plan: Plan, context: WorkerContext) -> PlanSteps:
    return STEPS[plan.kind](plan, context)


def on_deployment_finished(deployment_id: str, context: WorkerContext) -> str | None:
    """Move on the plan waiting for this deployment, if any; returns its id."""
    plan_id = context.plans.plan_for_deployment(deployment_id)
    if plan_id is not None:
        advance_plan(plan_id, context)
    return plan_id


@contextmanager
def plan_lock(plan_id: str, context: WorkerContext) -> Iterator[bool]:
    """The plan's own lock: one worker moves a plan at a time. Yields False when another holds it."""
    name, token = f"plan:{plan_id}", uuid.uuid4().hex
    held = context.locks.acquire(name, token, ttl_seconds=PLAN_LOCK_SECONDS)
    try:
        yield held
    finally:
        if held:
            context.locks.release(name, token)
