"""What the conductor's own records in Redis say about a window's deployments, for the deployment report.

The plans that may have deployed in the window: those created in it, those still running, and those that
made (or are the promotion of) a deployment Octopus lists in it, found by the plans' deployment links, which
catches a plan made before the window that deployed in it. Their steps' deployments are the conductor's;
a promotion's parent deployment is a person's. Beside them: the approval relays first seen in the window,
by component deployment, and the recorded outcomes of those deployments. Nothing here is written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import redis

from workers.approval_records import ApprovalRelay, ApprovalStore
from workers.keys import RedisKeys
from workers.plans import Plan, PlanStep, PlanStore
from workers.redis_client import as_text


@dataclass(frozen=True)
class Planned:
    """A deployment a plan knows: one of its steps', or (step None) the promotion's parent deployment."""

    plan: Plan
    step: PlanStep | None


@dataclass
class Records:
    deployments: dict[str, Planned] = field(default_factory=dict)
    approvals: dict[str, list[ApprovalRelay]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)


def read_records(connection: redis.Redis, keys: RedisKeys, *, since: datetime, listed: Iterable[str] = ()) -> Records:
    """The records that may bear on deployments created at or after `since`; `listed`: the deployment ids
    Octopus lists in the window."""
    store = PlanStore(connection, keys.prefix)
    plans = {plan.id: plan for plan in store.created_since(since)}
    plans.update({plan.id: plan for plan in store.running()})
    linked = store.plans_for_deployments(sorted(set(listed)))
    plans.update({plan.id: plan for plan in store.load_many(sorted(set(linked.values()) - set(plans)))})
    records = Records()
    for plan in sorted(plans.values(), key=lambda item: item.created_at):
        if plan.parent is not None:
            records.deployments[plan.parent.deployment_id] = Planned(plan, None)
        for step in plan.steps:
            if step.deployment_id:
                records.deployments[step.deployment_id] = Planned(plan, step)
    approvals: dict[str, list[ApprovalRelay]] = defaultdict(list)
    for relay in ApprovalStore(connection, keys.prefix).first_seen_since(since):
        approvals[relay.deployment_id].append(relay)
    records.approvals = dict(approvals)
    records.outcomes = _outcomes(connection, keys, sorted(set(records.deployments) | set(listed)))
    return records


def _outcomes(connection: redis.Redis, keys: RedisKeys, deployment_ids: list[str]) -> dict[str, dict[str, str]]:
    """Deployment id → its recorded outcome (`workers.outcomes`), for those kept."""
    with connection.pipeline(transaction=False) as pipe:
        for deployment_id in deployment_ids:
            pipe.hgetall(keys.deployment_outcome(deployment_id))
        found = pipe.execute()
    return {
        deployment_id: {as_text(key): as_text(value) for key, value in raw.items()}
        for deployment_id, raw in zip(deployment_ids, found, strict=True)
        if raw
    }
