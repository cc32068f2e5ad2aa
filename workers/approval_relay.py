"""Approvals given by people, relayed into the manual interventions of the component projects.

`ManualInterventionInterruptionRaised` in a component deployment: find the person's answer that covers
this very component release, environment and tenant (`workers.approval_cover`: the parent deployment
that ordered it, an earlier approval of the same release, or a parent bound by the rules), and whether
that person is in a team responsible for the component's step. If so, take responsibility as the service
account and submit the same answer, with notes that name the person, where and when they answered, and
a link to that task. Otherwise the step is left to people, with the reason; while an answer may still
come, the relay looks again later with backoff, up to the rules' `keep_looking_seconds`.

Never twice, and never over a person: each interruption has a record (`workers.approval_records`)
written before the relay acts, and is handled under a lock. The interruption is read again just before
the relay takes responsibility; a person who answered or took it first keeps it. Octopus's 400 for an
interruption the service account already submitted counts as done.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from workers.approval_answers import MANUAL, People, result_of
from workers.approval_cover import CoverFinder, LeftToPeople, NotYet, Relay
from workers.approval_records import ApprovalRelay, CoveringApproval, RelayStatus
from workers.directory import Directory, Doc
from workers.errors import PermanentError
from workers.events import OctopusEvent, utcnow
from workers.octopus import OctopusBadRequest, OctopusForbidden, OctopusRequestFailed, Params
from workers.rules import Orchestration
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.approvals")

CATEGORY = "ManualInterventionInterruptionRaised"
LOOK_AGAIN_JOB = "workers.jobs.look_again_for_approval"
GUIDED = "GuidedFailure"
LOCK_SECONDS = 120
BUSY_RETRY_SECONDS = 5.0
TIMER_LOST_AFTER = timedelta(seconds=60)


def on_intervention_raised(
    event: OctopusEvent, context: WorkerContext, *, server_uri: str | None = None
) -> dict[str, Any]:
    """A component deployment waits on a manual intervention: relay the answer that covers it, if there is one."""
    deployment_id = event.related("Deployments-")
    if deployment_id is None:
        raise PermanentError(f"{event.Id}: {event.Category} names no Deployments- document")
    client, directory = context.octopus_api()
    space_id = _space_of(event, context, directory)
    project_id = event.related("Projects-")
    if project_id is not None:
        project = directory.project_by_id(space_id, project_id)
        if _orchestration_for(context, directory, space_id, project["Name"]) is None:
            return {"deployment": deployment_id, "relays": [], "reason": f"{project['Name']} relays no approvals"}
    interruption_ids = event.related_all("Interruptions-")
    if not interruption_ids:
        # Octopus is not documented to name the interruption in this event: take the deployment's pending ones.
        params: Params = {"regarding": deployment_id, "pendingOnly": True}
        interruption_ids = [item["Id"] for item in client.items(f"/api/{space_id}/interruptions", params)]
    relays = [
        _relay(context, space_id, interruption_id, server_uri=server_uri, event_id=event.Id)
        for interruption_id in interruption_ids
    ]
    return {"deployment": deployment_id, "relays": relays}


def look_again(
    space_id: str, interruption_id: str, context: WorkerContext, *, timer: str | None = None
) -> dict[str, Any]:
    """Look again for the answer to an interruption that had none. `timer` names the scheduled look that
    called, so that the record knows it has fired."""
    return _relay(context, space_id, interruption_id, timer=timer)


def relay_notes(approval: CoveringApproval) -> str:
    """The notes submitted into the component's intervention: who answered, where and when, and why it counts."""
    when = approval.approved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if approval.approved_at else None
    at_time = f"on {when}" if when else "at a time the audit log does not show"
    tenant = f" for tenant {approval.tenant}" if approval.tenant else ""
    person = approval.approver
    answered = (
        f"{person.display_name} ({person.username}) chose {approval.result} at '{approval.step}' of "
        f"{approval.project} {approval.release_version} to {approval.environment}{tenant}, {at_time}"
    )
    if approval.kind == "earlier_approval":
        via = " (relayed then by Release Conductor)" if approval.relayed_by_conductor else ""
        head = f"Approved earlier for this very release: {answered}, in {approval.deployment_id}{via}."
        why = "Release Conductor redeployed that same release to new targets or to roll back a failed promotion"
        link = "Earlier deployment"
    else:
        verb = "Approved" if approval.result == "Proceed" else "Aborted"
        head = f"{verb} in the parent project {approval.project}: {answered}."
        if approval.kind == "ordered_by_parent":
            why = "That parent deployment ordered this deployment"
        else:
            why = f"This release matches {approval.pattern}, the pattern the rules derive from that parent release"
        link = "Parent deployment"
    return (
        f"{head}\n{why}, and {person.display_name} is in {person.team}, a team responsible for this step, so "
        f"Release Conductor submitted {approval.result} here on their behalf.\n{link}: {approval.link}"
    )


def _relay(
    context: WorkerContext,
    space_id: str,
    interruption_id: str,
    *,
    server_uri: str | None = None,
    event_id: str | None = None,
    timer: str | None = None,
) -> dict[str, Any]:
    token = uuid.uuid4().hex
    lock = f"approval:{interruption_id}"
    if not context.locks.acquire(lock, token, ttl_seconds=LOCK_SECONDS):
        context.require_scheduler().soon(LOOK_AGAIN_JOB, space_id, interruption_id, delay=BUSY_RETRY_SECONDS)
        return {"interruption": interruption_id, "deferred": "another worker is relaying it"}
    try:
        return _Relay(context, space_id, interruption_id).run(server_uri=server_uri, event_id=event_id, timer=timer)
    finally:
        context.locks.release(lock, token)


class _Relay:
    """One look at one interruption, under its lock."""

    def __init__(self, context: WorkerContext, space_id: str, interruption_id: str) -> None:
        self.context = context
        self.client, self.directory = context.octopus_api()
        self.store = context.approvals
        self.people = People(self.client, self.directory, space_id)
        self.space_id = space_id
        self.interruption_id = interruption_id
        self.interruption: Doc = {}
        self.record: ApprovalRelay

    def run(self, *, server_uri: str | None, event_id: str | None, timer: str | None) -> dict[str, Any]:
        record = self.store.load(self.interruption_id)
        if record is not None and record.finished:
            return _summary(record)
        self.interruption = self._read_interruption()
        if record is None:
            record = self._new_record(server_uri, event_id)
            if record is None:
                return {"interruption": self.interruption_id, "reason": "not a step of a component that relays"}
        self.record = record
        if timer is not None and record.timer == timer:
            record.timer = None
        if record.status == "relaying":
            self._submit()  # an earlier attempt recorded what it would submit, and may have: finish it, once
        else:
            self._decide()
        return _summary(record)

    # --- deciding ------------------------------------------------------------------------------------

    def _decide(self) -> None:
        orchestration = self._orchestration()
        if orchestration is None:
            self._refuse(f"orchestration {self.record.orchestration} no longer relays approvals")
            return
        if self._closed_or_taken(self.interruption):
            return
        why_not = self._why_not_relayable()
        if why_not is not None:
            self._refuse(why_not)
            return
        finder = CoverFinder(
            client=self.client,
            directory=self.directory,
            people=self.people,
            bindings=self.context.bindings,
            relays=self.store,
            record=self.record,
            interruption=self.interruption,
            orchestration=orchestration,
        )
        found = finder.find()
        if isinstance(found, Relay):
            self._answer(found.approval)
        elif isinstance(found, NotYet):
            self._wait(found.reason, orchestration)
        else:
            assert isinstance(found, LeftToPeople)
            self._refuse(found.reason)

    def _why_not_relayable(self) -> str | None:
        interruption = self.interruption
        kind = interruption.get("Type")
        if kind == GUIDED:
            return "a guided failure: failure guidance is left to people"
        if kind != MANUAL:
            return f"a {kind} interruption, not a manual intervention"
        if not interruption.get("CanTakeResponsibility"):
            return self._setup_problem()
        if not self.people.approving_teams(interruption):
            return (
                "no team responsible for this step but the service account's own: no person's approval can "
                "count for it, so it is left to people"
            )
        return None

    def _closed_or_taken(self, interruption: Doc) -> bool:
        """Settle the record if the interruption is no longer the relay's to answer; True if so."""
        holder = interruption.get("ResponsibleUserId")
        if not interruption.get("IsPending"):
            result = result_of(interruption) or (interruption.get("Form") or {}).get("Values", {}).get("Guidance")
            if result and holder and interruption.get("HasResponsibility") and result == self.record.result:
                self._relayed()  # the relay's own earlier submission
            elif result and holder:
                self._finish_as("answered_by_person", f"{self.people.user_name(holder)} answered {result} first")
            else:
                self._refuse("no longer pending: its deployment ended before anyone answered")
            return True
        if holder and not interruption.get("HasResponsibility"):
            self._finish_as(
                "answered_by_person", f"{self.people.user_name(holder)} took responsibility for it first: left to them"
            )
            return True
        return False

    # --- acting --------------------------------------------------------------------------------------

    def _answer(self, approval: CoveringApproval) -> None:
        """Record what will be submitted before submitting it, so that a retry finishes the same answer."""
        record = self.record
        record.status = "relaying"
        record.result = approval.result
        record.covered_by = approval
        record.notes = relay_notes(approval)
        record.reason = None
        record.checks += 1
        self.store.save(record)
        self._submit()

    def _submit(self) -> None:
        """Take responsibility and submit, unless a person answered or took the step in the meantime."""
        record = self.record
        interruption = self._read_interruption()
        if self._closed_or_taken(interruption):
            return
        base = f"/api/{self.space_id}/interruptions/{self.interruption_id}"
        try:
            if not interruption.get("HasResponsibility"):
                self.client.put(f"{base}/responsible")
            self.client.post(f"{base}/submit", {"Instructions": None, "Notes": record.notes, "Result": record.result})
        except OctopusForbidden:
            self._refuse(self._setup_problem())
            return
        except OctopusBadRequest as refused:
            self._settle(refused)
            return
        self._relayed()

    def _settle(self, refused: OctopusBadRequest) -> None:
        """Octopus answered 400: find out whether the answer is in already (ours: done) or someone else's."""
        if not self._closed_or_taken(self._read_interruption()):
            self._refuse(f"Octopus refused the {self.record.result}: {refused.error_message}")

    def _wait(self, reason: str, orchestration: Orchestration) -> None:
        record = self.record
        record.checks += 1
        keep_looking = orchestration.approvals.keep_looking_seconds
        deadline = record.first_seen_at + timedelta(seconds=keep_looking)
        now = utcnow()
        if now >= deadline:
            self._refuse(f"nothing to relay after looking for {keep_looking} s: {reason}")
            return
        record.status = "looking"
        record.reason = reason
        self._look_later(orchestration, now, deadline)
        self.store.save(record)

    def _look_later(self, orchestration: Orchestration, now: datetime, deadline: datetime) -> None:
        """One scheduled look per interruption is enough; a look that should have run long ago was lost with its
        worker, and is replaced. Waits double from `look_again_seconds` up to `look_again_max_seconds`, and the
        last look is at the deadline."""
        record = self.record
        due = record.next_check_at
        if record.timer is not None and due is not None and due > now - TIMER_LOST_AFTER:
            return
        rule = orchestration.approvals
        backoff = rule.look_again_seconds * 2 ** min(record.looks_scheduled, 30)  # bounded: a float, not a huge int
        delay = min(backoff, rule.look_again_max_seconds, (deadline - now).total_seconds())
        record.looks_scheduled += 1
        record.timer = uuid.uuid4().hex
        record.next_check_at = now + timedelta(seconds=delay)
        self.store.save(record)
        self.context.require_scheduler().soon(
            LOOK_AGAIN_JOB, self.space_id, self.interruption_id, record.timer, delay=delay
        )

    def _relayed(self) -> None:
        self._finish_as("relayed", None)
        record = self.record
        covered_by = record.covered_by
        log.info(
            "approval relayed",
            interruption=record.interruption_id,
            project=record.project,
            step=record.step,
            result=record.result,
            approver=covered_by.approver.username if covered_by else None,
            covered_by=covered_by.kind if covered_by else None,
            task=covered_by.task_id if covered_by else None,
        )

    def _refuse(self, reason: str) -> None:
        self._finish_as("refused", reason)
        record = self.record
        log.info("approval left to people", interruption=record.interruption_id, project=record.project, reason=reason)

    def _finish_as(self, status: RelayStatus, reason: str | None) -> None:
        record = self.record
        record.status = status
        record.reason = reason
        record.finished_at = utcnow()
        record.timer = None
        record.next_check_at = None
        self.store.save(record)

    # --- looking things up ---------------------------------------------------------------------------

    def _read_interruption(self) -> Doc:
        found: Doc = self.client.get(f"/api/{self.space_id}/interruptions/{self.interruption_id}")
        return found

    def _new_record(self, server_uri: str | None, event_id: str | None) -> ApprovalRelay | None:
        interruption = self.interruption
        deployment_id = next(
            (doc for doc in interruption.get("RelatedDocumentIds") or [] if doc.startswith("Deployments-")), None
        )
        if deployment_id is None:
            raise PermanentError(f"{self.interruption_id} is not about a deployment")
        deployment = self.client.get(f"/api/{self.space_id}/deployments/{deployment_id}")
        project = self.directory.project_by_id(self.space_id, deployment["ProjectId"])
        orchestration = _orchestration_for(self.context, self.directory, self.space_id, project["Name"])
        if orchestration is None:
            return None
        tenant_id = deployment.get("TenantId")
        environment_id = deployment["EnvironmentId"]
        return ApprovalRelay(
            interruption_id=self.interruption_id,
            space_id=self.space_id,
            orchestration=orchestration.name,
            step=str(interruption.get("Title") or ""),
            project=project["Name"],
            release_id=deployment["ReleaseId"],
            release_version=self.directory.release(self.space_id, deployment["ReleaseId"])["Version"],
            environment_id=environment_id,
            environment=self.directory.environment_by_id(self.space_id, environment_id)["Name"],
            tenant_id=tenant_id,
            tenant=self.directory.tenant_by_id(self.space_id, tenant_id)["Name"] if tenant_id else None,
            deployment_id=deployment_id,
            task_id=deployment["TaskId"],
            server_uri=server_uri,
            event_id=event_id,
        )

    def _orchestration(self) -> Orchestration | None:
        for orchestration in self.context.require_rules().orchestrations:
            if orchestration.name == self.record.orchestration and orchestration.approvals.enabled:
                return orchestration
        return None

    def _setup_problem(self) -> str:
        """Why the service account cannot answer the step, with the fix."""
        record = self.record
        try:
            teams = list(self.people.teams_of(self.people.service_account["Id"]).values())
        except OctopusRequestFailed:
            teams = []
        if teams:
            fix = f"add the service account's team ({', '.join(teams)}) to the responsible teams of that step"
        else:
            fix = (
                "put the service account in a team, e.g. Release Management, and add that team to the step's "
                "responsible teams"
            )
        return (
            f"set-up problem: the service account may not take responsibility for '{record.step}' in "
            f"{record.project}. Fix: {fix}"
        )


def _summary(record: ApprovalRelay) -> dict[str, Any]:
    return {
        "interruption": record.interruption_id,
        "status": record.status,
        "result": record.result,
        "reason": record.reason,
    }


def _relaying_orchestrations(context: WorkerContext) -> list[Orchestration]:
    return [
        item
        for item in context.require_rules().orchestrations
        if item.approvals.enabled and item.parent_project is not None
    ]


def _orchestration_for(
    context: WorkerContext, directory: Directory, space_id: str, project: str
) -> Orchestration | None:
    """The orchestration that relays approvals into this component project of `space_id`, if any: a component
    lives in its own space (rules `space:`), else in the orchestration's."""
    for orchestration in _relaying_orchestrations(context):
        for component in orchestration.components:
            if component.project.casefold() != project.casefold():
                continue
            if directory.space_id(orchestration.space_of(component)) == space_id:
                return orchestration
    return None


def _space_of(event: OctopusEvent, context: WorkerContext, directory: Directory) -> str:
    if event.SpaceId:
        return event.SpaceId
    spaces = {directory.space_id(space) for item in _relaying_orchestrations(context) for space in item.spaces()}
    if len(spaces) != 1:
        raise PermanentError(f"{event.Id} names no space, and the rules relay approvals in {len(spaces)} spaces")
    return spaces.pop()
