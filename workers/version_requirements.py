"""A component that depends on a version of another project (`requires`), checked before a promotion deploys it.

The version that counts is the release the destination (and tenant) runs of the required project: the one
this promotion itself deployed earlier in its order, if a step of it did, else Octopus's newest successful
deployment of that project to the whole destination (`workers.environment_release`). Ranges are compared by
`workers.version_range` (the `packaging` library). A requirement that is not met, or cannot be checked (nothing
runs there, a version `packaging` cannot read), skips the component (`unmet: skip`) or fails it (`unmet: fail`),
with the reason in the plan; when every requirement is met the step records what met them and deploys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workers.directory import Directory
from workers.environment_release import environment_release
from workers.errors import PermanentError
from workers.octopus import OctopusClient
from workers.plan_steps import Skip
from workers.plans import Plan, PlanStep
from workers.rules import ComponentRule, VersionRequirement
from workers.version_range import UnreadableVersion, parse_range, satisfies


class RequirementUnmet(PermanentError):
    """A component's version requirement is not met and the rules say `unmet: fail`."""


@dataclass(frozen=True)
class Running:
    """What the destination runs of a project, and how the conductor knows it."""

    version: str | None
    source: str  # "deployed by this promotion", "running in Staging", or why nothing is known


# The release the destination runs of a project (by its rules name), as Octopus records it.
RunningInOctopus = Callable[[str], Running]


def check_requirements(component: ComponentRule, plan: Plan, step: PlanStep, in_octopus: RunningInOctopus) -> None:
    """Raise Skip or RequirementUnmet when a requirement of the step's component is not met; otherwise record on
    the step what met them."""
    if not component.requires:
        return
    unmet: list[str] = []
    met: list[str] = []
    for requirement in component.requires:
        running = _deployed_earlier(plan, step, requirement.project) or in_octopus(requirement.project)
        verdict = _judge(requirement, running)
        (met if verdict is None else unmet).append(verdict or _met(requirement, running))
    if unmet:
        reason = "; ".join(unmet)
        if component.unmet == "skip":
            raise Skip(f"{reason} (unmet: skip)")
        raise RequirementUnmet(f"{reason} (unmet: fail)")
    step.requirements_met = "; ".join(met)


def _deployed_earlier(plan: Plan, step: PlanStep, project: str) -> Running | None:
    """The release this promotion deployed of the project before this step, if it did."""
    position = plan.steps.index(step)
    for earlier in reversed(plan.steps[:position]):
        if earlier.project.casefold() == project.casefold() and earlier.status == "succeeded":
            return Running(earlier.release_version, "deployed by this promotion")
    return None


def _judge(requirement: VersionRequirement, running: Running) -> str | None:
    """Why the requirement is not met, or None when it is."""
    wanted = f"requires {requirement.project} {requirement.version}"
    if running.version is None:
        return f"{wanted}: {running.source}"
    seen = f"{requirement.project} {running.version} ({running.source})"
    try:
        if satisfies(running.version, parse_range(requirement.version)):
            return None
    except UnreadableVersion as unreadable:
        return f"{wanted}: {seen} cannot be checked: {unreadable}"
    return f"{wanted}: {seen} is not in that range"


def _met(requirement: VersionRequirement, running: Running) -> str:
    return f"{requirement.project} {running.version} ({running.source}) meets {requirement.version}"


def running_in_octopus(client: OctopusClient, directory: Directory, plan: Plan, step: PlanStep) -> RunningInOctopus:
    """The release the step's destination (and tenant, for a project deployed per tenant) runs of a project: in
    the step's own space, where a required project is looked up as the step's component is."""
    space_id, environment_id = plan.space_of(step), plan.environment_of(step)
    where = directory.environment_by_id(space_id, environment_id)["Name"]

    def running(name: str) -> Running:
        project = directory.project(space_id, name)
        untenanted = (project.get("TenantedDeploymentMode") or "Untenanted") == "Untenanted"
        found = environment_release(
            client,
            directory,
            space_id=space_id,
            project=project,
            environment_id=environment_id,
            tenant_id=None if untenanted else step.tenant_id or plan.tenant_id,
            channel_id=None,
            component=ComponentRule(project=project["Name"]),
            machine_ids=[],
        )
        if found is None:
            return Running(None, f"nothing of {project['Name']} runs in {where}")
        return Running(str(found.release["Version"]), f"running in {where}")

    return running
