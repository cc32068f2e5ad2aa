"""From a queued event to the handler registered for its category."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workers import approval_relay, outcomes, plan_advance, promotion, redeploy
from workers.errors import UnhandledCategory
from workers.events import OctopusEvent, QueuedEvent
from workers.rules import TRIGGER_CATEGORIES, Rules
from workers.runtime import WorkerContext

Handler = Callable[[OctopusEvent, WorkerContext], dict[str, Any]]

DEPLOYMENT_FINISHED = ("DeploymentSucceeded", "DeploymentFailed")
# What the Octopus subscription should deliver for the sample rules (the README's set-up says the same).
SUBSCRIPTION_CATEGORIES = (
    "MachineAdded",
    "MachineHealthy",
    "DeploymentSucceeded",
    "DeploymentFailed",
    "ManualInterventionInterruptionRaised",
)


def deployment_finished(event: OctopusEvent, context: WorkerContext) -> dict[str, Any]:
    """Record how the deployment ended, then move on the plan that waits for it, if any."""
    outcome: dict[str, Any] = outcomes.record_deployment_outcome(event, context)
    outcome["plan"] = plan_advance.on_deployment_finished(outcome["deployment"], context)
    return outcome


def intervention_raised(
    event: OctopusEvent, context: WorkerContext, *, server_uri: str | None = None
) -> dict[str, Any]:
    """In a parent deployment: the conductor's promotion steps; in a component deployment: the approval relay."""
    promoted = promotion.on_parent_intervention(event, context)
    if promoted is not None:
        return promoted
    return approval_relay.on_intervention_raised(event, context, server_uri=server_uri)


HANDLERS: Mapping[str, Handler] = {
    **{category: deployment_finished for category in DEPLOYMENT_FINISHED},
    **{category: redeploy.on_machine_event for category in TRIGGER_CATEGORIES},
    approval_relay.CATEGORY: intervention_raised,
}


def handled_categories(rules: Rules | None) -> frozenset[str]:
    """The categories worth queueing with these rules; the intake answers the rest 'ignored'."""
    wanted = set(DEPLOYMENT_FINISHED)
    if rules is not None:
        wanted |= rules.trigger_categories()
        if any(item.approvals.enabled or item.promotes for item in rules.orchestrations):
            wanted.add(approval_relay.CATEGORY)
    return frozenset(category for category in wanted if category in HANDLERS)


def dispatch(queued: QueuedEvent, context: WorkerContext) -> dict[str, Any]:
    """Run the handler for the event's category."""
    event = queued.event
    handler = HANDLERS.get(event.Category)
    if handler is None:
        raise UnhandledCategory(event.Category)
    if handler is intervention_raised:
        # The relay's notes link to the parent task at the address people use: Octopus's ServerUri, when sent.
        return intervention_raised(event, context, server_uri=queued.server_uri)
    return handler(event, context)
