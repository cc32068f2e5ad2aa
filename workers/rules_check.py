"""`conductor check-rules`: do the names in a rules file exist in Octopus?"""

from __future__ import annotations

from typing import Any

from workers.directory import Directory, UnknownName
from workers.rules import Orchestration, Rules

Place = tuple[Any, ...]
Problem = tuple[Place, str]


def unresolved_names(rules: Rules, directory: Directory) -> list[Problem]:
    """Every space, project, channel and environment name the rules (exclusion groups too) use that Octopus does
    not know; a component's project and channel in the component's own space (`space:`), the rest in the
    orchestration's."""
    problems: list[Problem] = []
    for index, orchestration in enumerate(rules.orchestrations):
        here: Place = ("orchestrations", index)
        try:
            space_id = directory.space_id(orchestration.space)
        except UnknownName as unknown:
            problems.append(((*here, "space"), str(unknown)))
            continue
        lookups: list[tuple[Place, str, str, str | None, str]] = []
        if orchestration.parent_project is not None:
            lookups.append(((*here, "parent_project"), "project", orchestration.parent_project, None, space_id))
        if orchestration.approvals.environment is not None:
            approvals_environment = orchestration.approvals.environment
            lookups.append(((*here, "approvals", "environment"), "environment", approvals_environment, None, space_id))
        for position, component in enumerate(orchestration.components):
            place = (*here, "components", position)
            # A component of its own space is looked up there.
            component_space = space_id
            if component.space is not None:
                try:
                    component_space = directory.space_id(component.space)
                except UnknownName as unknown:
                    problems.append(((*place, "space"), str(unknown)))
                    continue
            lookups.append(((*place, "project"), "project", component.project, None, component_space))
            if component_space != space_id:  # the orchestration's environments are matched there by name
                for environment_place, environment in _environments_named(orchestration, here):
                    lookups.append((environment_place, "environment", environment, component.project, component_space))
            if component.channel is not None:
                lookups.append(((*place, "channel"), "channel", component.channel, component.project, component_space))
            for number, required in enumerate(component.requires):
                required_place = (*place, "requires", number, "project")
                lookups.append((required_place, "project", required.project, None, component_space))
        for place, kind, name, project_name, lookup_space in lookups:
            try:
                if kind == "project":
                    directory.project(lookup_space, name)
                elif kind == "environment":
                    directory.environment(lookup_space, name)
                else:
                    directory.channel(lookup_space, directory.project(lookup_space, project_name or ""), name)
            except UnknownName as unknown:
                if kind == "channel" and unknown.kind == "project":
                    continue  # the project itself is already reported
                lives = f", where {project_name} lives" if kind == "environment" and project_name else ""
                problems.append((place, f"{unknown}{lives}"))
    for index, group in enumerate(rules.exclusion_groups):
        here = ("exclusion_groups", index)
        try:
            space_id = directory.space_id(group.space)
        except UnknownName as unknown:
            problems.append(((*here, "space"), str(unknown)))
            continue
        for position, name in enumerate(group.projects):
            try:
                directory.project(space_id, name)
            except UnknownName as unknown:
                problems.append(((*here, "projects", position), str(unknown)))
    return problems


def _environments_named(orchestration: Orchestration, here: Place) -> list[tuple[Place, str]]:
    """The environment names of an orchestration that a component of another space needs there too."""
    named: list[tuple[Place, str]] = []
    if orchestration.source_environment is not None:
        named.append(((*here, "source_environment"), orchestration.source_environment))
    for position, schedule in enumerate(orchestration.schedules):
        named.append(((*here, "schedules", position, "to"), schedule.to))
        if schedule.source is not None:
            named.append(((*here, "schedules", position, "from"), schedule.source))
    return named
