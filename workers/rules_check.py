"""`conductor check-rules`: do the names in a rules file exist in Octopus?"""

from __future__ import annotations

from typing import Any

from workers.directory import Directory, UnknownName
from workers.rules import Rules

Place = tuple[Any, ...]
Problem = tuple[Place, str]


def unresolved_names(rules: Rules, directory: Directory) -> list[Problem]:
    """Every space, project, channel and environment name the rules (exclusion groups too) use that Octopus does
    not know."""
    problems: list[Problem] = []
    for index, orchestration in enumerate(rules.orchestrations):
        here: Place = ("orchestrations", index)
        try:
            space_id = directory.space_id(orchestration.space)
        except UnknownName as unknown:
            problems.append(((*here, "space"), str(unknown)))
            continue
        lookups: list[tuple[Place, str, str, str | None]] = []
        if orchestration.parent_project is not None:
            lookups.append(((*here, "parent_project"), "project", orchestration.parent_project, None))
        if orchestration.approvals.environment is not None:
            lookups.append(
                ((*here, "approvals", "environment"), "environment", orchestration.approvals.environment, None)
            )
        for position, component in enumerate(orchestration.components):
            place = (*here, "components", position)
            lookups.append(((*place, "project"), "project", component.project, None))
            if component.channel is not None:
                lookups.append(((*place, "channel"), "channel", component.channel, component.project))
        for place, kind, name, project_name in lookups:
            try:
                if kind == "project":
                    directory.project(space_id, name)
                elif kind == "environment":
                    directory.environment(space_id, name)
                else:
                    directory.channel(space_id, directory.project(space_id, project_name or ""), name)
            except UnknownName as unknown:
                if kind == "channel" and unknown.kind == "project":
                    continue  # the project itself is already reported
                problems.append((place, str(unknown)))
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
