"""A plan: an ordered list of component deployments to one environment (and tenant), a step per component.

Two planners make plans for one engine (`workers.plan_steps`): a redeploy (`kind: redeploy`) takes the
machines that arrived in an environment, and decides each step when it comes to it; a promotion
(`kind: promotion`) is made for a parent (orchestration) deployment, and its steps are frozen when it is
planned: each step's release is chosen then, and the plan waits (`planned`) for the parent's "Deploy the
components" step before it runs.

Plans live in Redis as JSON, so any worker can move one on and a plan survives a worker restart.
Machines that arrive close together gather under one group key before their plan starts.

A step's states: `pending` (not decided; `retry_at` set when it waits to try again after Octopus was
unavailable), `creating` (intent recorded; `uncertain_since` set while a POST of its deployment may still
be acted on by Octopus), `deploying`, `cancelling` (past its running-time limit, cancel sent, Octopus not
yet finished), then one of `succeeded`, `failed`, `skipped`, `not_run`. A step with a deployment is failed
only once Octopus reports its task finished.

A promotion with `on_failure: rollback` whose component fails gains rollback steps after its own
(`workers.rollback`, `rollback_of` set): real deployments of the releases its succeeded components replaced,
in reverse order, run and watched by the same engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import redis
from pydantic import BaseModel, Field

from workers.events import utcnow
from workers.redis_client import as_text
from workers.retention import DEFAULT_RETENTION, Retention
from workers.running_time import RunningTime

StepStatus = Literal["pending", "creating", "deploying", "cancelling", "succeeded", "failed", "skipped", "not_run"]
PlanStatus = Literal["planned", "running", "succeeded", "failed"]
PlanKind = Literal["redeploy", "promotion"]
ParentAnswer = Literal["Proceed", "Abort"]
FINISHED_STEPS = frozenset({"succeeded", "failed", "skipped", "not_run"})
PLANNED_LONGEST_SECONDS = 30 * 24 * 3600


class PlanStep(BaseModel):
    project: str
    status: StepStatus = "pending"
    reason: str | None = None
    project_id: str | None = None
    release_id: str | None = None
    release_version: str | None = None
    repeats_deployment: str | None = None
    machine_ids: list[str] = Field(default_factory=list)
    deployment_id: str | None = None
    task_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    running: RunningTime = Field(default_factory=RunningTime)
    retry_at: datetime | None = None
    retries: int = 0
    uncertain_since: datetime | None = None
    cancel_requested_at: datetime | None = None
    cancel_reason: str | None = None
    # A promotion's frozen choice: the tenant the deployment carries, its prompted values, the release it
    # replaces in the destination and its release notes.
    tenant_id: str | None = None
    form_values: dict[str, str] = Field(default_factory=dict)
    from_version: str | None = None
    notes: str | None = None
    # What the destination ran before a promotion's step (recorded when planned), for `on_failure: rollback`.
    from_release_id: str | None = None
    from_deployment_id: str | None = None
    rollback_of: int | None = Field(
        None, description="a rollback step: the index of the step whose component it takes back to from_release"
    )
    requirements_met: str | None = Field(None, description="the version requirements checked, and what met them")

    @property
    def label(self) -> str:
        """How a person reads the step: its project, and whether it rolls one back."""
        return f"{self.project} (rollback)" if self.rollback_of is not None else self.project

    # A component of another space than the plan's: that space, and the plan's environment's namesake there.
    space_id: str | None = None
    environment_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STEPS

    @property
    def in_flight(self) -> bool:
        """A deployment of this step may exist in Octopus and may still run."""
        return self.status in ("creating", "deploying", "cancelling")

    def finish(self, status: StepStatus, reason: str | None) -> None:
        self.status = status
        self.reason = reason
        self.finished_at = utcnow()
        self.retry_at = None
        self.uncertain_since = None


class ParentDeployment(BaseModel):
    """The parent (orchestration) deployment a promotion is made for, and its two conductor steps."""

    deployment_id: str
    task_id: str
    project: str
    release_version: str
    environment: str
    tenant: str | None = None
    plan_step_id: str | None = Field(None, description="the 'Plan the release' interruption, if the process has one")
    deploy_step_id: str | None = Field(None, description="the 'Deploy the components' interruption, once raised")
    what_if: bool = False
    answer: ParentAnswer | None = Field(None, description="what the conductor answers at the deploy step")
    answer_notes: str | None = None
    answered: bool = False
    canceled: bool = Field(False, description="Octopus ended the parent deployment before the plan did")


class Plan(BaseModel):
    id: str
    kind: PlanKind = "redeploy"
    parent: ParentDeployment | None = None
    requested_by: str | None = Field(None, description="who asked for a promotion on demand, and how")
    notes: str | None = Field(None, description="a promotion's plan and release notes (Markdown), as submitted")
    orchestration: str
    space_id: str
    environment_id: str
    tenant_id: str | None
    machine_ids: list[str]
    steps: list[PlanStep]
    status: PlanStatus = "running"
    report: str | None = None
    check_due: datetime | None = None
    timer: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    def current_step(self) -> PlanStep | None:
        return next((step for step in self.steps if not step.finished), None)

    def space_of(self, step: PlanStep) -> str:
        """The space the step's component is looked up and deployed in."""
        return step.space_id or self.space_id

    def environment_of(self, step: PlanStep) -> str:
        """The id of the environment the step deploys to, in its own space."""
        return step.environment_id or self.environment_id

    def lock_name(self, step: PlanStep) -> str:
        """Stable for the step's whole life: by project name, known before the project is looked up."""
        return f"{self.space_of(step)}:{step.project.casefold()}:{self.environment_of(step)}"

    def machine_lock_name(self, machine_id: str) -> str:
        """One lock per machine a step deploys to: a machine in several environments runs one of the
        conductor's deployments at a time."""
        return f"{self.space_id}:machine:{machine_id}"


def group_key(orchestration: str, space_id: str, environment_id: str, tenant_id: str | None) -> str:
    return f"{orchestration}|{space_id}|{environment_id}|{tenant_id or 'untenanted'}"


def parse_group(group: str) -> tuple[str, str, str, str | None]:
    orchestration, space_id, environment_id, tenant = group.rsplit("|", 3)
    return orchestration, space_id, environment_id, None if tenant == "untenanted" else tenant


# Add a machine to a group once per event; open the group with a new plan id if it is not open.
_GATHER = """
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2])
if fresh then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
local open = redis.call('GET', KEYS[3])
if open then
  return {fresh and 1 or 0, open, 0}
end
if not fresh then
  return {0, false, 0}
end
local plan_id = 'plan-' .. redis.call('INCR', KEYS[4])
redis.call('SET', KEYS[3], plan_id, 'PX', ARGV[3])
return {1, plan_id, 1}
"""

# Take the gathered machines for a plan, once: a retried start finds them already taken.
_TAKE_MACHINES = """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.call('SMEMBERS', KEYS[3])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return {}
end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('DEL', KEYS[2])
return redis.call('SMEMBERS', KEYS[3])
"""


class PlanStore:
    """Plans, and what leads to them. A running plan is kept while it runs (the sweep sees to it that it ends);
    an ended one, its machines and its deployments' links are kept for the retention (`workers.retention`),
    as are the gathering records of the events that made it."""

    def __init__(self, connection: redis.Redis, prefix: str, *, retention: Retention = DEFAULT_RETENTION) -> None:
        self._redis = connection
        self._prefix = prefix
        self._retention = retention
        self._take = connection.register_script(_TAKE_MACHINES)
        self._gather = connection.register_script(_GATHER)

    def _plan_key(self, plan_id: str) -> str:
        return f"{self._prefix}:plan:{plan_id}"

    @property
    def _index(self) -> str:
        return f"{self._prefix}:plans"

    @property
    def _promotions(self) -> str:
        """The promotion plans alone, for `GET /promotions`."""
        return f"{self._prefix}:promotions"

    @property
    def _running(self) -> str:
        """The plans still running, so that the sweep finds them without reading every plan."""
        return f"{self._prefix}:plans-running"

    def save(self, plan: Plan) -> None:
        retention = self._retention
        ended = plan.status in ("succeeded", "failed")
        with self._redis.pipeline(transaction=True) as pipe:
            # A planned promotion waits for its parent's approvals; one whose parent never comes back is dropped.
            longest = PLANNED_LONGEST_SECONDS if plan.status == "planned" else None
            retention.keep(
                pipe, self._plan_key(plan.id), plan.model_dump_json(), ended=ended, longest_in_progress=longest
            )
            retention.index(pipe, self._index, plan.id, at=plan.created_at, now=utcnow())
            if plan.kind == "promotion":
                retention.index(pipe, self._promotions, plan.id, at=plan.created_at, now=utcnow())
            if plan.status == "running":
                pipe.zadd(self._running, {plan.id: plan.created_at.timestamp()})
            else:
                pipe.zrem(self._running, plan.id)
            if ended:
                pipe.expire(self._machines_key(plan.id), retention.seconds)
            deployments = [step.deployment_id for step in plan.steps if step.deployment_id]
            if plan.parent is not None:  # the parent's own outcome moves its promotion on too
                deployments.append(plan.parent.deployment_id)
            for deployment_id in deployments:
                retention.keep(pipe, self._deployment_key(deployment_id), plan.id, ended=ended)
            pipe.execute()

    def load(self, plan_id: str) -> Plan | None:
        raw = self._redis.get(self._plan_key(plan_id))
        return None if raw is None else Plan.model_validate_json(raw)

    def recent(self, limit: int = 50, *, promotions_only: bool = False) -> list[Plan]:
        index = self._promotions if promotions_only else self._index
        ids = [as_text(item) for item in self._redis.zrevrange(index, 0, limit - 1)]  # type: ignore[arg-type]
        raws = self._redis.mget([self._plan_key(plan_id) for plan_id in ids]) if ids else []
        return [Plan.model_validate_json(raw) for raw in raws if raw is not None]

    def running(self) -> list[Plan]:
        """Every plan whose status is running, oldest first."""
        ids = [as_text(item) for item in self._redis.zrange(self._running, 0, -1)]  # type: ignore[arg-type]
        raws = self._redis.mget([self._plan_key(plan_id) for plan_id in ids]) if ids else []
        plans = [Plan.model_validate_json(raw) for raw in raws if raw is not None]
        return [plan for plan in plans if plan.status == "running"]

    def created_since(self, at: datetime) -> list[Plan]:
        """The plans created at or after `at` that are still kept, oldest first (for the deployment report)."""
        ids = [as_text(item) for item in self._redis.zrangebyscore(self._index, at.timestamp(), "+inf")]  # type: ignore[arg-type]
        return self.load_many(ids)

    def load_many(self, plan_ids: list[str]) -> list[Plan]:
        raws = self._redis.mget([self._plan_key(plan_id) for plan_id in plan_ids]) if plan_ids else []
        return [Plan.model_validate_json(raw) for raw in raws if raw is not None]

    def plans_for_deployments(self, deployment_ids: list[str]) -> dict[str, str]:
        """Deployment id → the id of the plan that made it (or that it is the parent of), for those kept."""
        found = self._redis.mget([self._deployment_key(item) for item in deployment_ids]) if deployment_ids else []
        return {item: as_text(plan) for item, plan in zip(deployment_ids, found, strict=True) if plan is not None}

    def plan_for_deployment(self, deployment_id: str) -> str | None:
        value = self._redis.get(self._deployment_key(deployment_id))
        return None if value is None else as_text(value)

    def _deployment_key(self, deployment_id: str) -> str:
        return f"{self._prefix}:plan-deployment:{deployment_id}"

    def gather(self, group: str, machine_id: str, event_id: str, *, hold_seconds: float) -> tuple[str | None, bool]:
        """Add a machine to its group. Returns the id of the plan the group will start and whether this
        call must schedule that start: it opened the group, or it is a retry that may have lost the
        schedule (a second start of the same plan is harmless)."""
        keys = [
            f"{self._prefix}:gathered:{event_id}:{group}",
            self._gather_key(group),
            self._open_key(group),
            f"{self._prefix}:plan-counter",
        ]
        # The open key and the gathered machines expire should the start job be lost, so that a later machine
        # reopens the group.
        args: list[str | int] = [machine_id, self._retention.seconds, int((hold_seconds + 600) * 1000)]
        fresh, plan_id, opened = self._gather(keys=keys, args=args)
        return (as_text(plan_id) if plan_id else None), bool(opened or (plan_id and not fresh))

    def take_machines(self, group: str, plan_id: str) -> list[str]:
        keys = [self._gather_key(group), self._open_key(group), self._machines_key(plan_id)]
        return sorted(as_text(item) for item in self._take(keys=keys, args=[]))

    def _machines_key(self, plan_id: str) -> str:
        return f"{self._prefix}:plan-machines:{plan_id}"

    def _gather_key(self, group: str) -> str:
        return f"{self._prefix}:gather:{group}"

    def _open_key(self, group: str) -> str:
        return f"{self._prefix}:gather-open:{group}"
