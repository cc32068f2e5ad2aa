"""The simulator's documents, kept as Octopus-shaped dicts keyed by id, plus the indices hot paths need."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from simulator.errors import not_found

if TYPE_CHECKING:
    from simulator.audit import EventIdBlocks

Doc = dict[str, Any]
TenantKey = str | None


@dataclass
class ClockSettings:
    """How long the things Octopus does by itself take (seconds; zero is allowed)."""

    queue_delay: float = 0.5
    step_duration: float = 0.5
    health_check_delay: float = 0.5


@dataclass
class StepFailure:
    """Make a named step fail the next `remaining` times it runs (in a project, optionally an environment and a
    release)."""

    id: str
    project_id: str
    step_name: str
    environment_id: str | None
    remaining: int
    error_message: str
    release_id: str | None = None

    def to_json(self) -> Doc:
        return {
            "Id": self.id,
            "ProjectId": self.project_id,
            "StepName": self.step_name,
            "EnvironmentId": self.environment_id,
            "ReleaseId": self.release_id,
            "Remaining": self.remaining,
            "ErrorMessage": self.error_message,
        }


@dataclass
class Store:
    clock: Callable[[], datetime]
    settings: ClockSettings = field(default_factory=ClockSettings)
    counters: dict[str, int] = field(default_factory=dict)

    spaces: dict[str, Doc] = field(default_factory=dict)
    users: dict[str, Doc] = field(default_factory=dict)
    teams: dict[str, Doc] = field(default_factory=dict)
    api_keys: dict[str, Doc] = field(default_factory=dict)  # key -> ApiKeyResource (+ "ApiKey")
    project_groups: dict[str, Doc] = field(default_factory=dict)
    projects: dict[str, Doc] = field(default_factory=dict)
    processes: dict[str, Doc] = field(default_factory=dict)  # live processes and release snapshots
    channels: dict[str, Doc] = field(default_factory=dict)
    lifecycles: dict[str, Doc] = field(default_factory=dict)
    environments: dict[str, Doc] = field(default_factory=dict)
    machines: dict[str, Doc] = field(default_factory=dict)
    tenants: dict[str, Doc] = field(default_factory=dict)
    tag_sets: dict[str, Doc] = field(default_factory=dict)
    releases: dict[str, Doc] = field(default_factory=dict)
    deployments: dict[str, Doc] = field(default_factory=dict)
    tasks: dict[str, Doc] = field(default_factory=dict)
    interruptions: dict[str, Doc] = field(default_factory=dict)
    subscriptions: dict[str, Doc] = field(default_factory=dict)
    variable_sets: dict[str, Doc] = field(default_factory=dict)  # project variable sets (variableset-Projects-n)
    build_information: dict[str, Doc] = field(default_factory=dict)  # pushed per package id and version

    # The audit log: events[i] has auto id i + 1; regarding maps a document id to the auto ids naming it.
    events: list[Doc] = field(default_factory=list)
    regarding: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # Event ids: Events-<auto id>, or allocated in blocks per node apart from auto ids (audit.EventIdBlocks).
    event_id_blocks: EventIdBlocks | None = None
    event_auto_ids: dict[str, int] = field(default_factory=dict)

    interruptions_regarding: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # What the next health check of a machine finds (set through the control surface).
    health_targets: dict[str, str] = field(default_factory=dict)
    # Unique names per (kind, space, lower-case name).
    names: dict[tuple[str, str, str], str] = field(default_factory=dict)
    release_versions: dict[tuple[str, str], str] = field(default_factory=dict)
    # Deployment ids per (project, environment, tenant), oldest first: dashboards and progression.
    deployment_history: dict[tuple[str, str, TenantKey], list[str]] = field(default_factory=lambda: defaultdict(list))
    # Environments where a release succeeded, per tenant: lifecycle progression.
    release_progress: dict[tuple[str, TenantKey], set[str]] = field(default_factory=lambda: defaultdict(set))
    # Tasks that are queued or running, so the clock never scans finished ones.
    active_tasks: dict[str, None] = field(default_factory=dict)
    task_runs: dict[str, Any] = field(default_factory=dict)  # task id -> task_clock.TaskRun
    # Octopus runs one deployment per project, environment and tenant at a time.
    concurrency_locks: dict[tuple[str, str, TenantKey], str] = field(default_factory=dict)
    task_logs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    step_failures: list[StepFailure] = field(default_factory=list)

    on_task_change: Callable[[], None] = lambda: None
    on_event: Callable[[], None] = lambda: None

    def now(self) -> datetime:
        return self.clock()

    def next_id(self, prefix: str) -> str:
        number = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = number
        return f"{prefix}-{number}"

    def peek_next_number(self, prefix: str) -> int:
        return self.counters.get(prefix, 0) + 1

    @property
    def default_space_id(self) -> str:
        for space in self.spaces.values():
            if space.get("IsDefault"):
                return str(space["Id"])
        return "Spaces-1"

    def last_event_auto_id(self) -> int:
        return len(self.events)

    def claim_name(self, kind: str, space_id: str | None, name: str, doc_id: str) -> bool:
        """Reserve a unique name; False when another document already holds it."""
        key = (kind, space_id or "", name.strip().lower())
        holder = self.names.get(key)
        if holder is not None and holder != doc_id:
            return False
        self.names[key] = doc_id
        return True

    def release_name(self, kind: str, space_id: str | None, name: str) -> None:
        self.names.pop((kind, space_id or "", name.strip().lower()), None)

    def find_by_name(self, kind: str, space_id: str | None, name: str) -> str | None:
        return self.names.get((kind, space_id or "", name.strip().lower()))


def get_doc(collection: dict[str, Doc], doc_id: str, space_id: str | None = None) -> Doc:
    """A document by id, 404 when missing or in another space."""
    doc = collection.get(doc_id)
    if doc is None or (space_id is not None and doc.get("SpaceId") not in (space_id, None)):
        raise not_found(doc_id)
    return doc


def in_space(collection: dict[str, Doc], space_id: str) -> list[Doc]:
    return [doc for doc in collection.values() if doc.get("SpaceId") == space_id]
