"""Settle every running plan that has no live timer: schedule its advance.

A plan moves on by events and by its timer. A timer is lost when its worker dies before RQ has it, or a
job fails for good; without this sweep such a plan would stay `running` and hold its locks. `conductor
reconcile` runs it each pass and `conductor worker` once at start.
"""

from __future__ import annotations

from workers.events import utcnow
from workers.plan_steps import ADVANCE_PLAN_JOB, TIMER_LOST_AFTER
from workers.plans import PlanStore
from workers.scheduling import JobScheduler


def sweep_plans(plans: PlanStore, scheduler: JobScheduler) -> list[str]:
    """Schedule an advance for each running plan whose timer is missing or long overdue; returns their ids."""
    now = utcnow()
    woken = []
    for plan in plans.running():
        if plan.timer is not None and plan.check_due is not None and plan.check_due > now - TIMER_LOST_AFTER:
            continue
        scheduler.soon(ADVANCE_PLAN_JOB, plan.id)
        woken.append(plan.id)
    return woken
