"""What the approval relay did with each component manual intervention, one record per interruption.

A record is written before the relay acts on Octopus (status `relaying`, with the result and notes it is
about to submit), so a retried job or a second event finds what an earlier attempt did and finishes it
instead of starting again. Records live in Redis as JSON, newest first in an index by when the relay
first saw the interruption. A finished record is kept for the retention (`workers.retention`); one still
looking is kept while it may still look (`LONGEST_KEEP_LOOKING_SECONDS`), and the retention after that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import redis
from pydantic import BaseModel, Field

from workers.events import utcnow
from workers.redis_client import as_text
from workers.retention import DEFAULT_RETENTION, Retention

# looking: no approval to relay yet, a look again is scheduled; relaying: about to submit (or submitted and
# not yet recorded); relayed: submitted in Octopus; refused: left to people, `reason` says why;
# answered_by_person: a person answered or took the step before the relay did (not a refusal).
RelayStatus = Literal["looking", "relaying", "relayed", "refused", "answered_by_person"]
RelayResult = Literal["Proceed", "Abort"]
FINISHED = frozenset({"relayed", "refused", "answered_by_person"})
# The rules' longest keep_looking_seconds: no record is still looking after that.
LONGEST_KEEP_LOOKING_SECONDS = 7 * 24 * 3600
# What made the approval count for the component deployment (workers.approval_cover):
# ordered_by_parent: the parent deployment that ordered it (a promotion); earlier_approval: a person's answer
# at the same step of an earlier deployment of this very release, environment and tenant (a redeploy);
# bound_by_rule: a parent deployment whose release matches the rules' `bind_others` pattern.
CoverKind = Literal["ordered_by_parent", "earlier_approval", "bound_by_rule"]


class Approver(BaseModel):
    user_id: str
    username: str
    display_name: str
    team: str = Field(description="the approver's team that is responsible for the component's step")


class CoveringApproval(BaseModel):
    """The answer a person gave that the relay passes on, and where it was given."""

    kind: CoverKind
    project: str
    release_version: str
    environment: str
    tenant: str | None
    deployment_id: str
    task_id: str
    interruption_id: str
    step: str
    result: RelayResult
    approver: Approver
    approved_at: datetime | None = Field(description="from the audit event of the submission, when found")
    link: str
    pattern: str | None = Field(None, description="for bound_by_rule: the pattern the component release matched")
    relayed_by_conductor: bool = Field(
        False, description="for earlier_approval: the conductor submitted that answer on the approver's behalf"
    )


class ApprovalRelay(BaseModel):
    interruption_id: str
    space_id: str
    orchestration: str
    step: str
    project: str
    release_id: str
    release_version: str
    environment_id: str
    environment: str
    tenant_id: str | None
    tenant: str | None
    deployment_id: str
    task_id: str
    status: RelayStatus = "looking"
    reason: str | None = None
    result: RelayResult | None = None
    covered_by: CoveringApproval | None = None
    notes: str | None = None
    checks: int = Field(0, description="times the relay looked at it")
    looks_scheduled: int = Field(0, description="looks again scheduled so far; each waits twice the one before")
    next_check_at: datetime | None = None
    timer: str | None = None
    server_uri: str | None = None
    event_id: str | None = None
    first_seen_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ApprovalStore:
    def __init__(self, connection: redis.Redis, prefix: str, *, retention: Retention = DEFAULT_RETENTION) -> None:
        self._redis = connection
        self._prefix = prefix
        self._retention = retention

    def _key(self, interruption_id: str) -> str:
        return f"{self._prefix}:approval:{interruption_id}"

    @property
    def _index(self) -> str:
        return f"{self._prefix}:approvals"

    def save(self, record: ApprovalRelay) -> None:
        record.updated_at = utcnow()
        retention = self._retention
        with self._redis.pipeline(transaction=True) as pipe:
            retention.keep(
                pipe,
                self._key(record.interruption_id),
                record.model_dump_json(),
                ended=record.finished,
                longest_in_progress=LONGEST_KEEP_LOOKING_SECONDS,
            )
            retention.index(pipe, self._index, record.interruption_id, at=record.first_seen_at, now=record.updated_at)
            pipe.execute()

    def load(self, interruption_id: str) -> ApprovalRelay | None:
        raw = self._redis.get(self._key(interruption_id))
        return None if raw is None else ApprovalRelay.model_validate_json(raw)

    def recent(self, limit: int = 50) -> list[ApprovalRelay]:
        ids = [as_text(item) for item in self._redis.zrevrange(self._index, 0, limit - 1)]  # type: ignore[arg-type]
        raws = self._redis.mget([self._key(interruption_id) for interruption_id in ids]) if ids else []
        return [ApprovalRelay.model_validate_json(raw) for raw in raws if raw is not None]

    def first_seen_since(self, at: datetime) -> list[ApprovalRelay]:
        """Every record first seen at or after `at`, oldest first (a plan's summary, the deployment report)."""
        ids = [as_text(item) for item in self._redis.zrangebyscore(self._index, at.timestamp(), "+inf")]  # type: ignore[arg-type]
        raws = self._redis.mget([self._key(interruption_id) for interruption_id in ids]) if ids else []
        return [ApprovalRelay.model_validate_json(raw) for raw in raws if raw is not None]
