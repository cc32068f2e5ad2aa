"""What a worker process holds for its jobs: connections and configuration, installed once at start.

RQ calls job functions by name with JSON arguments only, so the thin job entry points take their
collaborators from here and pass them on explicitly; nothing deeper reads this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from workers.approval_binding import ApprovalBindings
from workers.approval_records import ApprovalStore
from workers.directory import Directory
from workers.errors import PermanentError
from workers.keys import RedisKeys
from workers.locks import Locks
from workers.notify_config import NotifyConfig
from workers.octopus import OctopusClient
from workers.plans import PlanStore
from workers.retention import DEFAULT_RETENTION, Retention
from workers.rules import Rules
from workers.scheduling import JobScheduler


@dataclass(frozen=True)
class WorkerContext:
    redis: redis.Redis
    keys: RedisKeys
    rules: Rules | None = None
    octopus: OctopusClient | None = None
    directory: Directory | None = None
    scheduler: JobScheduler | None = None
    retention: Retention = DEFAULT_RETENTION
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    @property
    def plans(self) -> PlanStore:
        return PlanStore(self.redis, self.keys.prefix, retention=self.retention)

    @property
    def approvals(self) -> ApprovalStore:
        return ApprovalStore(self.redis, self.keys.prefix, retention=self.retention)

    @property
    def bindings(self) -> ApprovalBindings:
        return ApprovalBindings(self.redis, self.keys.prefix, retention=self.retention)

    @property
    def locks(self) -> Locks:
        return Locks(self.redis, self.keys.prefix)

    def octopus_api(self) -> tuple[OctopusClient, Directory]:
        if self.octopus is None or self.directory is None:
            raise PermanentError(
                "no Octopus server configured: set CONDUCTOR_OCTOPUS_URL and CONDUCTOR_OCTOPUS_API_KEY"
            )
        return self.octopus, self.directory

    def require_rules(self) -> Rules:
        if self.rules is None:
            raise PermanentError("no rules loaded: set CONDUCTOR_RULES to the rules file")
        return self.rules

    def require_scheduler(self) -> JobScheduler:
        if self.scheduler is None:
            raise RuntimeError("this worker cannot schedule follow-up jobs")
        return self.scheduler


_installed: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    global _installed
    _installed = context


def current() -> WorkerContext:
    if _installed is None:
        raise RuntimeError("no WorkerContext installed: start jobs through `conductor worker`")
    return _installed
