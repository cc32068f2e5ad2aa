"""One plan's steps, moved on: decide, create the deployment once, watch it, cancel it past its limit, settle
it. Called by `workers.plan_advance.advance_plan` under the plan's own lock. The engine is the same for every
kind of plan; a planner says, through the hooks of `PlanSteps`, what a step deploys (`_decide`), with which
body (`_body`) and binding (`_binding`), within which limits (`_limits`), and what ending the plan means
(`_ended`): `workers.redeploy_decision.RedeploySteps`, `workers.promotion_steps.PromotionSteps`.

A step deploys under the lock of (space, project, environment) and the locks of its machines, so that a
machine in several environments never runs two of the conductor's deployments at once. A deployment that
runs (`workers.running_time`) past `deployment_timeout_seconds` is canceled, and its step fails once
Octopus has ended it; waiting for people does not count. Any error inside a step ends in a stated state:
failed with its reason (a permanent error, for a step with no deployment in flight), or waiting to try
again at `retry_at`, with a timer (Octopus unavailable).

Every step is written to Redis before it acts, and a deployment is found again by the marker in its
comments, so a retried job or a restarted worker never creates a second deployment. A POST that got no
answer leaves the step `creating` with `uncertain_since`; only after `create_grace_seconds` (longer than
Octopus may still act on it) does the step look for its marker among every deployment created since its
intent, and POST again only when it is surely absent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from workers import exclusion
from workers.approval_binding import ApprovalBinding, marker
from workers.directory import Doc
from workers.environment_release import parse_time
from workers.errors import PermanentError, TransientError
from workers.events import utcnow
from workers.octopus import OctopusRequestFailed, OctopusUnavailable
from workers.outcomes import read_deployment_outcome
from workers.plans import Plan, PlanStep
from workers.rules import Orchestration
from workers.running_time import is_running, tally
from workers.runtime import WorkerContext
from workers.watch_records import WatchRecords

log = structlog.get_logger("conductor.redeploy")

ADVANCE_PLAN_JOB = "workers.jobs.advance_plan"
# The project, environment and machine locks: bounded, extended at each look of their holder.
LOCK_SECONDS = 600
RETRY_MAX_SECONDS = 300
TIMER_LOST_AFTER = timedelta(seconds=60)
TIMER_SLACK = timedelta(seconds=1)
# A gateway that gave up (502, 504) or a timeout says nothing of what Octopus did, or still does.
UNANSWERED_STATUSES = frozenset({502, 504})
# The conductor's clock and Octopus's may differ: the search for a created deployment looks this much further.
CLOCK_SKEW = timedelta(minutes=10)
# While the task watcher is alive, a deploying step's timer is only its fallback (`workers.task_watcher`).
WATCHED_CHECK_SECONDS = 120


class Skip(Exception):
    """A step that has nothing to deploy; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """The settings a kind of plan runs its steps with."""

    task_check_seconds: int
    create_grace_seconds: int
    deployment_timeout_seconds: int
    stop_on_failure: bool

    @classmethod
    def of(cls, rule: TimedRule, *, stop_on_failure: bool) -> Limits:
        """The limits a rules section (`redeploy`, `promotion`) sets."""
        return cls(
            task_check_seconds=rule.task_check_seconds,
            create_grace_seconds=rule.create_grace_seconds,
            deployment_timeout_seconds=rule.deployment_timeout_seconds,
            stop_on_failure=stop_on_failure,
        )


class TimedRule(Protocol):
    """A rules section that times a plan's steps (read-only: the rules are frozen)."""

    @property
    def task_check_seconds(self) -> int: ...

    @property
    def create_grace_seconds(self) -> int: ...

    @property
    def deployment_timeout_seconds(self) -> int: ...


class PlanSteps:
    """Takes a plan's current step as far as it can go now, then the next, until the plan must wait."""

    def __init__(self, plan: Plan, context: WorkerContext) -> None:
        self.plan = plan
        self.context = context
        self.client, self.directory = context.octopus_api()
        self.rule = orchestration_named(context, plan.orchestration)
        self.limits = self._limits()
        self._bindings = context.bindings
        self._watch_records = WatchRecords(context.redis, context.keys.prefix, retention=context.retention)

    # --- what a kind of plan says ---------------------------------------------------------------------

    def _limits(self) -> Limits:
        raise NotImplementedError

    def _decide(self, step: PlanStep) -> Doc | None:
        """Set the step's release (and machines), or raise Skip. Returns the deployment whose settings the
        step's deployment repeats, if any."""
        raise NotImplementedError

    def _template(self, step: PlanStep) -> Doc | None:
        """The deployment whose settings the step repeats, read again when an earlier attempt stopped half way."""
        return None

    def _body(self, step: PlanStep, template: Doc | None) -> Doc:
        raise NotImplementedError

    def _binding(self, step: PlanStep) -> ApprovalBinding:
        raise NotImplementedError

    def _tenant(self, step: PlanStep) -> str | None:
        return self.plan.tenant_id

    def _cancel_reason(self, step: PlanStep) -> str | None:
        """Why the step's deployment must be canceled now, if it must: past its running-time limit."""
        limit = self.limits.deployment_timeout_seconds
        if step.running.seconds > limit:
            return f"it ran {step.running.seconds:.0f} s, past the limit of {limit} s of running time"
        return None

    def _failed(self) -> bool:
        """Whether the plan, at its end, failed."""
        return any(step.status == "failed" for step in self.plan.steps)

    def _ended(self) -> None:
        """What the plan's end means beyond its report (a promotion answers its parent)."""

    def run(self) -> None:
        while self.plan.status == "running":
            step = self.plan.current_step()
            if step is None:
                self._finish()
                return
            if not self._move(step):
                return

    def _move(self, step: PlanStep) -> bool:
        """One transition of the current step; False when the plan must wait. Every error ends in a stated
        state: failed with its reason, or waiting to try again at a stated time (with a timer)."""
        now = utcnow()
        if step.retry_at is not None and now < step.retry_at:
            if step.in_flight:
                self._keep_locks(step)
            self._check_later((step.retry_at - now).total_seconds())
            return False
        try:
            return self._transition(step)
        except TransientError as error:
            return self._try_again_later(step, error)
        except PermanentError as error:
            if step.in_flight:  # Octopus may still run its deployment: never failed on our side alone
                return self._try_again_later(step, error)
            step.finish("failed", str(error))
            self._release(step)
            self._after_failure(step)
            self._save()
            return self.plan.status == "running"

    def _transition(self, step: PlanStep) -> bool:
        if step.status == "pending":
            return self._start(step)
        if step.status == "creating":
            return self._resume_creating(step)
        return self._watch(step)

    def _start(self, step: PlanStep) -> bool:
        lock = self.plan.lock_name(step)
        if not self.context.locks.acquire(lock, self.plan.id, ttl_seconds=self._lock_seconds()):
            self.context.locks.wait(lock, self.plan.id, at=utcnow().timestamp())
            self._check_later(self.limits.task_check_seconds)
            return False
        try:
            template = self._decide(step)
        except Skip as skip:
            step.finish("skipped", skip.reason)
            self._release(step)
            self._save()
            return True
        except Exception:
            self._release(step)
            raise
        machine_locks = [self.plan.machine_lock_name(machine) for machine in step.machine_ids]
        machine_locks += exclusion.exclusion_locks(self.context, self.plan, step)
        busy = self.context.locks.acquire_all(
            machine_locks, self.plan.id, ttl_seconds=self._lock_seconds(), waiter_at=utcnow().timestamp()
        )
        if busy:
            # No lock is held while waiting: other plans for other machines go ahead meanwhile.
            self._release(step)
            holders = sorted({self.context.locks.holder(name) or "another plan" for name in busy})
            machines = [name.rsplit(":", 1)[1] for name in busy]
            step.reason = f"waiting: {', '.join(machines)} being deployed by {', '.join(holders)}"
            self._check_later(self.limits.task_check_seconds)
            self._save()
            return False
        in_the_way = exclusion.deployments_in_the_way(self.context, self.plan, step)
        if in_the_way is not None:
            # Another project of its exclusion group deploys there: the task watcher wakes the plan once it ends.
            self._release(step)
            step.reason = in_the_way
            self._check_later(self.limits.task_check_seconds)
            self._save()
            return False
        step.status = "creating"
        step.reason = None
        step.retries = 0
        step.started_at = utcnow()
        return self._create(step, template)

    def _resume_creating(self, step: PlanStep) -> bool:
        """An earlier attempt recorded its intent and may have sent the POST: find its deployment, or, once
        Octopus can no longer be acting on that POST, send it again."""
        grace = timedelta(seconds=self.limits.create_grace_seconds)
        now = utcnow()
        if step.uncertain_since is not None and now < step.uncertain_since + grace:
            self._keep_locks(step)
            self._check_later(min(self.limits.task_check_seconds, (step.uncertain_since + grace - now).total_seconds()))
            self._save()
            return False
        existing = self._find_created(step)
        if existing is not None:
            return self._adopt(step, existing)
        return self._create(step, self._template(step))

    def _create(self, step: PlanStep, template: Doc | None) -> bool:
        body = self._body(step, template)
        # What the deployment is for, so that the approval relay relays only what covers it.
        self._bindings.record(self._binding(step))
        # From here until Octopus answers, the POST's outcome is unknown: recorded before it is sent.
        step.uncertain_since = utcnow()
        self._save()
        try:
            created = self.client.post(f"/api/{self.plan.space_of(step)}/deployments", body)
        except OctopusRequestFailed as refused:
            step.finish("failed", f"Octopus refused the deployment: {refused}")
            self._release(step)
            self._after_failure(step)
            self._save()
            return self.plan.status == "running"
        except OctopusUnavailable as unavailable:
            if unavailable.status is not None and unavailable.status not in UNANSWERED_STATUSES:
                step.uncertain_since = None  # Octopus itself answered: it is done with that request
            raise
        return self._adopt(step, created)

    def _adopt(self, step: PlanStep, deployment: Doc) -> bool:
        step.status = "deploying"
        step.deployment_id = deployment["Id"]
        step.task_id = deployment["TaskId"]
        step.uncertain_since = None
        step.retry_at = None
        step.retries = 0
        step.reason = None
        self._save()
        log.info(
            "deployment created",
            plan=self.plan.id,
            project=step.project,
            deployment=step.deployment_id,
            release=step.release_version,
            machines=step.machine_ids,
        )
        self._check_later(self.limits.task_check_seconds)
        return False

    def _find_created(self, step: PlanStep) -> Doc | None:
        """The deployment an earlier attempt of this step created, if it got that far: the step's marker among
        every deployment of that project, environment and tenant created since its intent was recorded."""
        marker = self._marker(step)
        since = (step.started_at or utcnow()) - CLOCK_SKEW
        environment_id = self.plan.environment_of(step)
        params = {"projects": step.project_id, "environments": environment_id, "tenants": self._tenant(step)}
        for deployment in self.client.items(f"/api/{self.plan.space_of(step)}/deployments", params):
            if marker in (deployment.get("Comments") or ""):
                return dict(deployment)
            created = parse_time(deployment.get("Created"))
            if created is not None and created < since:
                return None  # newest first: the rest are older still
        return None

    def _marker(self, step: PlanStep) -> str:
        """What the step's deployment carries in its Comments, to be found again and bound."""
        return marker(self._marker_name(step))

    def _marker_name(self, step: PlanStep) -> str:
        return f"{self.plan.id}/{self.plan.steps.index(step)}"

    def _watch(self, step: PlanStep) -> bool:
        assert step.deployment_id is not None
        assert step.task_id is not None
        recorded = read_deployment_outcome(self.context, step.deployment_id)
        if recorded is not None:
            state, error = recorded["result"], ""
        else:
            task, seen_at = self._task_as_seen(step.task_id)
            step.running = tally(step.running, running=is_running(task), at=seen_at)
            state, error = (task["State"] if task.get("IsCompleted") else "active"), task.get("ErrorMessage") or ""
        if state == "active":
            why = self._cancel_reason(step) if step.status == "deploying" else None
            if why is not None:
                self.client.post(f"/api/tasks/{step.task_id}/cancel", None)
                step.status = "cancelling"
                step.cancel_requested_at = utcnow()
                step.cancel_reason = why
                log.warning("cancelling a deployment", plan=self.plan.id, deployment=step.deployment_id, reason=why)
            step.retry_at, step.retries = None, 0
            step.reason = self._cancelling_reason(step) if step.status == "cancelling" else None
            self._keep_locks(step)
            self._check_later(self._look_again_seconds(step))
            self._save()
            return False
        cancelled = step.status == "cancelling"
        if state == "Success":
            step.finish("succeeded", "finished before the cancel took effect" if cancelled else None)
        elif cancelled:
            step.finish(
                "failed", f"{step.deployment_id} ended {state} after the conductor canceled it: {step.cancel_reason}"
            )
        else:
            step.finish("failed", f"{step.deployment_id} ended {state}" + (f": {error}" if error else ""))
        self._release(step)
        if step.status == "failed":
            self._after_failure(step)
        self._save()
        return self.plan.status == "running"

    def _task_as_seen(self, task_id: str) -> tuple[Doc, datetime]:
        """The task watcher's recent sighting of the task, if there is one (no call to Octopus), else the task."""
        sighting = self._watch_records.sighting(task_id, now=utcnow())
        if sighting is not None:
            return sighting, sighting["at"]
        return self.client.get(f"/api/tasks/{task_id}"), utcnow()

    def _look_again_seconds(self, step: PlanStep) -> float:
        """While a task watcher is alive it moves the plan on: the timer looks less often, but in time for the
        running-time limit."""
        every = self.limits.task_check_seconds
        if not self._watch_records.alive():
            return every
        left = self.limits.deployment_timeout_seconds - step.running.seconds
        return max(every, min(WATCHED_CHECK_SECONDS, left))

    def _cancelling_reason(self, step: PlanStep) -> str:
        why = step.cancel_reason or f"ran {step.running.seconds:.0f} s, past its limit of running time"
        return f"{why}: cancelling {step.deployment_id}; failed once Octopus has ended it"

    def _try_again_later(self, step: PlanStep, error: Exception) -> bool:
        """Wait, with a timer, and try the same transition again. A step with no deployment in Octopus lets
        its locks go meanwhile; one whose deployment may exist keeps them (and extends them)."""
        now = utcnow()
        delay = min(RETRY_MAX_SECONDS, self.limits.task_check_seconds * 2**step.retries)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            delay = max(delay, float(retry_after))
        step.retry_at = now + timedelta(seconds=delay)
        step.retries += 1
        if step.status == "creating" and step.uncertain_since is not None:
            look_at = step.uncertain_since + timedelta(seconds=self.limits.create_grace_seconds)
            step.retry_at = max(step.retry_at, look_at)
            what = f"Octopus may still create it: looking for it at {step.retry_at:%H:%M:%S} UTC"
        else:
            what = f"trying again at {step.retry_at:%H:%M:%S} UTC"
        step.reason = f"{error}; {what}"
        if step.in_flight:
            self._keep_locks(step)
        else:
            self._release(step)
        log.warning("step waits to try again", plan=self.plan.id, project=step.project, reason=step.reason)
        self._check_later((step.retry_at - now).total_seconds())
        self._save()
        return False

    def _after_failure(self, failed: PlanStep) -> None:
        if not self.limits.stop_on_failure:
            return
        for step in self.plan.steps:
            if not step.finished:
                step.finish("not_run", f"stopped after {failed.project} failed")
        self._finish()

    def _finish(self) -> None:
        plan = self.plan
        plan.status = "failed" if self._failed() else "succeeded"
        plan.finished_at = utcnow()
        plan.check_due = None
        plan.timer = None
        plan.report = render_report(plan)
        self._save()
        self._bindings.ended([self._marker_name(step) for step in plan.steps])
        log.info("plan finished", plan=plan.id, status=plan.status, report=plan.report)
        self._ended()

    def _step_locks(self, step: PlanStep) -> list[str]:
        machines = [self.plan.machine_lock_name(machine) for machine in step.machine_ids]
        return [self.plan.lock_name(step), *machines, *exclusion.exclusion_locks(self.context, self.plan, step)]

    def _release(self, step: PlanStep) -> None:
        for waiter in self.context.locks.release_all(self._step_locks(step), self.plan.id):
            if waiter != self.plan.id:
                self.context.require_scheduler().soon(ADVANCE_PLAN_JOB, waiter)

    def _keep_locks(self, step: PlanStep) -> None:
        if not self.context.locks.extend_all(self._step_locks(step), self.plan.id, ttl_seconds=self._lock_seconds()):
            log.warning("a lock of this step had expired", plan=self.plan.id, project=step.project)

    def _check_later(self, seconds: float) -> None:
        """One pending timer per plan is enough: events move it on sooner. A timer due later than wanted is
        replaced (it fires for nothing), and so is one that should have fired long ago (lost with its worker)."""
        now = utcnow()
        due = self.plan.check_due
        wanted = now + timedelta(seconds=max(seconds, 0.0))
        if self.plan.timer is not None and due is not None and now - TIMER_LOST_AFTER < due <= wanted + TIMER_SLACK:
            return
        self.plan.timer = uuid.uuid4().hex
        self.plan.check_due = wanted
        self._save()
        self.context.require_scheduler().soon(ADVANCE_PLAN_JOB, self.plan.id, self.plan.timer, delay=seconds)

    def _lock_seconds(self) -> int:
        """Bounded, whatever the deployment's length: each look extends it."""
        return max(LOCK_SECONDS, 3 * self.limits.task_check_seconds)

    def _save(self) -> None:
        self.context.plans.save(self.plan)


def render_report(plan: Plan) -> str:
    parent = plan.parent
    where = (
        f"for {parent.project} {parent.release_version} to {parent.environment}"
        if parent is not None
        else f"to {', '.join(plan.machine_ids)} in {plan.environment_id}"
    )
    lines = [
        f"{plan.id} ({plan.orchestration}) {where}"
        + (f" for {plan.tenant_id}" if plan.tenant_id else "")
        + f": {plan.status}"
    ]
    for step in plan.steps:
        what = f"{step.release_version} as {step.deployment_id}" if step.deployment_id else ""
        lines.append(
            f"  {step.label}: {step.status}"
            + (f" {what}" if what else "")
            + (f" ({step.reason})" if step.reason else "")
        )
    failed = [step.label for step in plan.steps if step.status == "failed"]
    not_run = [step.label for step in plan.steps if step.status == "not_run"]
    if failed:
        lines.append(f"  failed: {', '.join(failed)}; not deployed: {', '.join(not_run) or 'nothing else'}")
    return "\n".join(lines)


def orchestration_named(context: WorkerContext, name: str) -> Orchestration:
    for orchestration in context.require_rules().orchestrations:
        if orchestration.name == name:
            return orchestration
    raise PermanentError(f"orchestration {name!r} is no longer in the rules")
