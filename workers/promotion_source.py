"""Where a promotion takes a component's release from: the environments of the lifecycle phases before the
destination's, as the "Deploy Child Octopus Deploy Project" step template computes them (octopus-api.md §3.3).

Walking back from the phase before the destination's, every environment (automatic and optional) of each
phase is a source, up to and including the first phase that is not optional. When every phase walked was
optional and none of its environments has a match, the channel's newest release is taken instead. A
destination in the first phase has no source: the channel's newest release is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workers.directory import Doc


class NotInLifecycle(Exception):
    """The destination is in no phase of the lifecycle, so no release of it can go there."""


@dataclass(frozen=True)
class Sources:
    environment_ids: tuple[str, ...]  # empty: the destination is in the first phase
    channel_fallback: bool  # no match in the sources: take the channel's newest release instead


def phase_environments(phase: Doc) -> list[str]:
    both = [*(phase.get("AutomaticDeploymentTargets") or []), *(phase.get("OptionalDeploymentTargets") or [])]
    return list(dict.fromkeys(both))


def source_environments(phases: Sequence[Doc], destination_id: str, named_source_id: str | None = None) -> Sources:
    """The sources for a promotion to `destination_id`; `named_source_id` (the rules') replaces the walk."""
    index = next((i for i, phase in enumerate(phases) if destination_id in phase_environments(phase)), None)
    if index is None:
        raise NotInLifecycle(destination_id)
    if index == 0:
        return Sources(environment_ids=(), channel_fallback=True)
    if named_source_id is not None:
        return Sources(environment_ids=(named_source_id,), channel_fallback=False)
    found: list[str] = []
    for phase in reversed(phases[:index]):
        found += [environment for environment in phase_environments(phase) if environment not in found]
        if not phase.get("IsOptionalPhase"):
            return Sources(environment_ids=tuple(found), channel_fallback=False)
    return Sources(environment_ids=tuple(found), channel_fallback=True)
