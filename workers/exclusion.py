"""Exclusion groups: projects (of any orchestration, deployed by anyone) that must not deploy to the same
environment at once (the rules' top-level `exclusion_groups`).

Before a plan step creates its deployment (`workers.plan_steps`, the step's start), it
- takes a lock per group of its project in its environment, with its other locks, so that two of the
  conductor's own plans never run two of a group's projects there at once (the one that waits is woken when
  the lock is released);
- reads what Octopus runs in the space (`workers.running_deployments`, the same one call the task watcher
  makes), so that deployments the conductor did not make count too: a deployment of another project of the
  group to that environment that is executing and not waiting on people (or still cancelling) holds the step.
  The plan's own parent deployment never counts.
A held step says whom it waits on, keeps no lock, and is recorded as waiting; the task watcher looks at what
runs every second while any step waits, and moves the plan on as soon as nothing of its group runs there.
"""

from __future__ import annotations

import json

import structlog

from workers.directory import UnknownName
from workers.events import utcnow
from workers.plans import Plan, PlanStep
from workers.redis_client import as_text
from workers.rules import ExclusionGroupRule
from workers.running_deployments import RunningDeployment, list_running
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.exclusion")


def groups_of(context: WorkerContext, plan: Plan, step: PlanStep) -> list[ExclusionGroupRule]:
    """The exclusion groups that hold the step's project in the step's own space."""
    rules = context.rules
    if rules is None or not rules.exclusion_groups:
        return []
    project = step.project.casefold()
    return [
        group
        for group in rules.exclusion_groups
        if project in {name.casefold() for name in group.projects} and _in_space(context, group, plan.space_of(step))
    ]


def _in_space(context: WorkerContext, group: ExclusionGroupRule, space_id: str) -> bool:
    """By the id the rules may use first (no call), else by the group's space's id (cached by the directory)."""
    if group.space == space_id:
        return True
    try:
        _, directory = context.octopus_api()
        return directory.space_id(group.space) == space_id
    except UnknownName:
        return False


def exclusion_locks(context: WorkerContext, plan: Plan, step: PlanStep) -> list[str]:
    """The step's lock per group in its environment (the name's last part reads well in a waiting reason)."""
    return [
        f"{plan.space_of(step)}:exclusion:exclusion group '{group.name}' in {plan.environment_of(step)}"
        for group in groups_of(context, plan, step)
    ]


def deployments_in_the_way(context: WorkerContext, plan: Plan, step: PlanStep) -> str | None:
    """Why the step must wait (whom it waits on), or None when no other project of its groups is deploying
    to the step's environment. A step that must wait is recorded for the watcher to wake."""
    groups = groups_of(context, plan, step)
    waits = ExclusionWaits(context)
    if not groups:
        return None
    _, directory = context.octopus_api()
    space_id, environment_id = plan.space_of(step), plan.environment_of(step)
    others: dict[str, tuple[str, str]] = {}  # project id -> (project name, group name)
    for group in groups:
        for name in group.projects:
            if name.casefold() == step.project.casefold():
                continue
            try:
                others.setdefault(str(directory.project(space_id, name)["Id"]), (name, group.name))
            except UnknownName:
                log.warning("exclusion group names an unknown project", group=group.name, project=name)
    entry: dict[str, object] = {
        "space": space_id,
        "environment": environment_id,
        "projects": sorted(others),
        "parent": plan.parent.deployment_id if plan.parent is not None else None,
    }
    blocking = [item for item in list_running(context, space_id) if blocks(item, entry)] if others else []
    if not blocking:
        waits.done(plan.id)
        return None
    waits.wait(plan.id, entry)
    environment = directory.environment_by_id(space_id, environment_id)["Name"]
    whom = "; ".join(
        f"{others[item.project_id][0]} {item.deployment_id} ({item.task_id}) of exclusion group "
        f"'{others[item.project_id][1]}'"
        for item in blocking
    )
    return f"waiting: {whom} is deploying to {environment}; starts once it ends"


def blocks(item: RunningDeployment, entry: dict[str, object]) -> bool:
    """Whether a running deployment still holds a step that waits as `entry` says."""
    return (
        item.project_id in set(entry["projects"])  # type: ignore[call-overload]
        and item.environment_id == entry["environment"]
        and item.deployment_id != entry.get("parent")
        and item.deploying
    )


class ExclusionWaits:
    """The plans whose step waits on an exclusion group, for the watcher. A hash kept for the retention; a plan
    drops its entry when its step goes ahead, the watcher when it wakes the plan."""

    def __init__(self, context: WorkerContext) -> None:
        self._context = context
        self._key = f"{context.keys.prefix}:exclusion-waits"

    def wait(self, plan_id: str, entry: dict[str, object]) -> None:
        """Record (or renew) the plan's wait: its space, environment, the group's other projects, its parent."""
        with self._context.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key, plan_id, json.dumps({**entry, "since": utcnow().isoformat()}))
            pipe.expire(self._key, self._context.retention.seconds)
            pipe.execute()

    def done(self, plan_id: str) -> None:
        self._context.redis.hdel(self._key, plan_id)

    def take(self, plan_id: str) -> bool:
        """True for the one caller that removes the entry."""
        return bool(self._context.redis.hdel(self._key, plan_id))

    def waiting(self) -> dict[str, dict[str, object]]:
        found = self._context.redis.hgetall(self._key)
        return {as_text(plan_id): json.loads(raw) for plan_id, raw in found.items()}


def spaces_waiting(context: WorkerContext) -> set[str]:
    return {str(entry["space"]) for entry in ExclusionWaits(context).waiting().values()}
