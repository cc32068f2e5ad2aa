"""Approvals given once in the release-orchestration (parent) project, relayed into the manual interventions
of the component projects.

`ManualInterventionInterruptionRaised` in a component deployment: find the parent deployment that covers
it, who answered the parent's manual interventions, and whether one of those people is in a team
responsible for the component's step. If so, take responsibility as the service account and submit the
same answer, with notes that name the person, the parent release, environment and tenant, the time of
the approval and a link to the parent task. Otherwise the step is left to people; while an approval may
still come, the relay looks again later with backoff, up to the rules' `keep_looking_seconds`.

The parent deployment that covers a component deployment: a deployment of the parent project to the
approval environment (the component's own unless the rules name one), untenanted or for the same tenant
(`tenant: same`) or for any (`tenant: any`), created after the component's release was: an approval given
before a release existed is not an approval of it. The newest of those that is running or has succeeded
covers it. One that was aborted at a manual intervention covers it too, and its Abort is relayed only with
`relay_abort`. Failed, canceled and queued ones are passed over.

Never twice: each interruption has a record (`workers.approval_records`) written before the relay acts,
and is handled under a lock. Octopus's 400 for an interruption the service account already submitted
counts as done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from workers.approval_records import (
    ApprovalRelay,
    ApprovalStore,
    Approver,
    ParentApproval,
    RelayResult,
)
from workers.directory import Directory, Doc
from workers.errors import PermanentError
from workers.events import OctopusEvent, utcnow
from workers.octopus import OctopusBadRequest, OctopusForbidden, OctopusRequestFailed, Params
from workers.rules import Orchestration
from workers.runtime import WorkerContext

log = structlog.get_logger("conductor.approvals")

CATEGORY = "ManualInterventionInterruptionRaised"
LOOK_AGAIN_JOB = "workers.jobs.look_again_for_approval"
MANUAL = "ManualIntervention"
GUIDED = "GuidedFailure"
RESULTS: tuple[RelayResult, ...] = ("Proceed", "Abort")
RUNNING_OR_SUCCEEDED = frozenset({"Executing", "Success"})
LOCK_SECONDS = 120
BUSY_RETRY_SECONDS = 5.0
TIMER_LOST_AFTER = timedelta(seconds=60)
PARENT_DEPLOYMENTS_SCANNED = 50
EVENTS_SCANNED = 500
# No public source confirms a category id for a submitted interruption (the simulator writes this one);
# Octopus's own step templates match the message instead, and so does the relay.
SUBMITTED_CATEGORY = "InterruptionSubmitted"
SUBMITTED_MESSAGE = "Submitted interruption"
LATEST = datetime.max.replace(tzinfo=UTC)


def on_intervention_raised(
    event: OctopusEvent, context: WorkerContext, *, server_uri: str | None = None
) -> dict[str, Any]:
    """A component deployment waits on a manual intervention: relay the parent's answer, if there is one."""
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
    """Look again for the parent's answer to an interruption that had none. `timer` names the scheduled look
    that called, so that the record knows it has fired."""
    return _relay(context, space_id, interruption_id, timer=timer)


def relay_notes(approval: ParentApproval) -> str:
    """The notes submitted into the component's intervention: who answered in the parent, where and when."""
    verb = "Approved" if approval.result == "Proceed" else "Aborted"
    when = approval.approved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if approval.approved_at else None
    tenant = f" for tenant {approval.tenant}" if approval.tenant else ""
    person = approval.approver
    return (
        f"{verb} in the parent project {approval.project}: {person.display_name} ({person.username}) chose "
        f"{approval.result} at '{approval.step}' of release {approval.release_version} to "
        f"{approval.environment}{tenant}, {f'on {when}' if when else 'at a time the audit log does not show'}.\n"
        f"{person.display_name} is in {person.team}, a team responsible for this step, so Release Conductor "
        f"submitted {approval.result} here on their behalf.\n"
        f"Parent deployment: {approval.link}"
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


@dataclass(frozen=True)
class _Given:
    """One answer given in the parent deployment."""

    interruption: Doc
    result: RelayResult
    user: Doc
    teams: dict[str, str]
    at: datetime | None


@dataclass(frozen=True)
class _Parent:
    deployment: Doc
    answers: list[_Given]


@dataclass(frozen=True)
class _Answer:
    approval: ParentApproval


@dataclass(frozen=True)
class _NotYet:
    reason: str


@dataclass(frozen=True)
class _LeftToPeople:
    reason: str


class _Relay:
    """One look at one interruption, under its lock."""

    def __init__(self, context: WorkerContext, space_id: str, interruption_id: str) -> None:
        self.context = context
        self.client, self.directory = context.octopus_api()
        self.store = ApprovalStore(context.redis, context.keys.prefix)
        self.space_id = space_id
        self.interruption_id = interruption_id
        self.interruption: Doc = {}
        self.record: ApprovalRelay
        self._teams: dict[str, dict[str, str]] = {}

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
        why_not = self._why_not_relayable()
        if why_not is not None:
            self._refuse(why_not)
            return
        found = self._parent_answer(orchestration)
        if isinstance(found, _Answer):
            self._answer(found.approval)
        elif isinstance(found, _NotYet):
            self._wait(found.reason, orchestration)
        else:
            self._refuse(found.reason)

    def _why_not_relayable(self) -> str | None:
        interruption = self.interruption
        if not interruption.get("IsPending"):
            return self._closed_reason(interruption)
        kind = interruption.get("Type")
        if kind == GUIDED:
            return "a guided failure: failure guidance is left to people"
        if kind != MANUAL:
            return f"a {kind} interruption, not a manual intervention"
        holder = interruption.get("ResponsibleUserId")
        if holder and not interruption.get("HasResponsibility"):
            return f"{self._user_name(holder)} has taken responsibility for it: left to them"
        if not interruption.get("CanTakeResponsibility"):
            return self._setup_problem()
        return None

    def _parent_answer(self, orchestration: Orchestration) -> _Answer | _NotYet | _LeftToPeople:
        record = self.record
        assert orchestration.parent_project is not None
        parent_project = self.directory.project(self.space_id, orchestration.parent_project)
        approvals = orchestration.approvals
        if approvals.environment is not None:
            environment = self.directory.environment(self.space_id, approvals.environment)
        else:
            environment = self.directory.environment_by_id(self.space_id, record.environment_id)
        parent = self._covering_parent(parent_project, environment["Id"], same_tenant=approvals.tenant == "same")
        where = f"{parent_project['Name']} to {environment['Name']}" + (
            f" for tenant {record.tenant}" if record.tenant and approvals.tenant == "same" else ""
        )
        if parent is None:
            return _NotYet(
                f"no deployment of {where} that is running or has succeeded since {record.project} "
                f"{record.release_version} was created"
            )
        described = f"{where} ({parent.deployment['Id']})"
        aborts = [given for given in parent.answers if given.result == "Abort"]
        if aborts:
            return self._abort_answer(parent, aborts, described, environment["Name"], relay_abort=approvals.relay_abort)
        proceeds = [given for given in parent.answers if given.result == "Proceed"]
        if not proceeds:
            return _NotYet(f"no approval yet in {described}")
        match = self._first_responsible(proceeds)
        if match is None:
            approvers = ", ".join(
                f"{g.user['Username']} ({', '.join(g.teams.values()) or 'no team'})" for g in proceeds
            )
            return _NotYet(
                f"no approver in {described} is in a team responsible for this step "
                f"({self._team_names(self.interruption.get('ResponsibleTeamIds') or [])}); approved by {approvers}"
            )
        given, team = match
        return _Answer(self._approval(parent, given, team, environment["Name"]))

    def _abort_answer(
        self, parent: _Parent, aborts: list[_Given], described: str, environment: str, *, relay_abort: bool
    ) -> _Answer | _LeftToPeople:
        who = ", ".join(f"{g.user['Username']} at '{g.interruption.get('Title')}'" for g in aborts)
        if not relay_abort:
            return _LeftToPeople(
                f"{described} was aborted by {who}; relay_abort is off, so this step is left to people"
            )
        match = self._first_responsible(aborts)
        if match is None:
            return _LeftToPeople(f"{described} was aborted by {who}, who is in no team responsible for this step")
        given, team = match
        return _Answer(self._approval(parent, given, team, environment))

    def _covering_parent(self, parent_project: Doc, environment_id: str, *, same_tenant: bool) -> _Parent | None:
        release = self.directory.release(self.space_id, self.record.release_id)
        release_created = _when(release.get("Assembled"))
        params = {"projects": parent_project["Id"], "environments": environment_id}
        deployments = self.client.items(f"/api/{self.space_id}/deployments", params, limit=PARENT_DEPLOYMENTS_SCANNED)
        for deployment in deployments:
            created = _when(deployment.get("Created"))
            if release_created is not None and created is not None and created < release_created:
                return None  # newest first: every one after this is older still
            if same_tenant and deployment.get("TenantId") not in (None, self.record.tenant_id):
                continue
            task = self.client.get(f"/api/tasks/{deployment['TaskId']}")
            if task.get("State") in RUNNING_OR_SUCCEEDED:
                return _Parent(deployment, self._answers(task["Id"]))
            if task.get("State") == "Failed":
                answers = self._answers(task["Id"])
                if any(given.result == "Abort" for given in answers):
                    return _Parent(deployment, answers)
        return None

    def _answers(self, task_id: str) -> list[_Given]:
        """The manual interventions submitted in a parent task, earliest first, by people (not service accounts:
        the relay's own answers are no person's approval)."""
        submitted = [
            item
            for item in self.client.items(f"/api/{self.space_id}/interruptions", {"regarding": task_id})
            if item.get("Type") == MANUAL
            and not item.get("IsPending")
            and _result_of(item) in RESULTS
            and item.get("ResponsibleUserId")
        ]
        if not submitted:
            return []
        times = self._submission_times(task_id)
        given = []
        for item in submitted:
            user = self.directory.user(item["ResponsibleUserId"])
            if user.get("IsService"):
                continue
            result = _result_of(item)
            assert result in RESULTS
            given.append(_Given(item, result, user, self._teams_of(user["Id"]), times.get(item["Id"])))
        return sorted(given, key=lambda item: item.at or LATEST)

    def _submission_times(self, task_id: str) -> dict[str, datetime]:
        """When each interruption of a task was submitted, from the audit log (newest event first)."""
        times: dict[str, datetime] = {}
        params: Params = {"regardingAny": task_id, "spaces": self.space_id, "includeSystem": True}
        for event in self.client.items("/api/events", params, limit=EVENTS_SCANNED):
            message = str(event.get("Message") or "")
            if event.get("Category") != SUBMITTED_CATEGORY and not message.startswith(SUBMITTED_MESSAGE):
                continue
            about = set(event.get("RelatedDocumentIds") or [])
            about |= {str(ref.get("ReferencedDocumentId")) for ref in event.get("MessageReferences") or []}
            occurred = _when(event.get("Occurred"))
            for doc_id in about:
                if doc_id.startswith("Interruptions-") and occurred is not None:
                    times.setdefault(doc_id, occurred)
        return times

    def _first_responsible(self, answers: list[_Given]) -> tuple[_Given, str] | None:
        responsible = set(self.interruption.get("ResponsibleTeamIds") or [])
        for given in answers:
            shared = [name for team_id, name in given.teams.items() if team_id in responsible]
            if shared:
                return given, shared[0]
        return None

    def _approval(self, parent: _Parent, given: _Given, team: str, environment: str) -> ParentApproval:
        deployment = parent.deployment
        tenant_id = deployment.get("TenantId")
        release = self.directory.release(self.space_id, deployment["ReleaseId"])
        project = self.directory.project_by_id(self.space_id, deployment["ProjectId"])
        base = (self.record.server_uri or self.client.base_url).rstrip("/")
        return ParentApproval(
            project=project["Name"],
            release_version=release["Version"],
            environment=environment,
            tenant=self.directory.tenant_by_id(self.space_id, tenant_id)["Name"] if tenant_id else None,
            deployment_id=deployment["Id"],
            task_id=deployment["TaskId"],
            interruption_id=given.interruption["Id"],
            step=str(given.interruption.get("Title") or ""),
            result=given.result,
            approver=Approver(
                user_id=given.user["Id"],
                username=given.user.get("Username") or given.user["Id"],
                display_name=given.user.get("DisplayName") or given.user.get("Username") or given.user["Id"],
                team=team,
            ),
            approved_at=given.at,
            link=f"{base}/app#/{self.space_id}/tasks/{deployment['TaskId']}",
        )

    # --- acting --------------------------------------------------------------------------------------

    def _answer(self, approval: ParentApproval) -> None:
        """Record what will be submitted before submitting it, so that a retry finishes the same answer."""
        record = self.record
        record.status = "relaying"
        record.result = approval.result
        record.parent = approval
        record.notes = relay_notes(approval)
        record.reason = None
        record.checks += 1
        self.store.save(record)
        self._submit()

    def _submit(self) -> None:
        record = self.record
        interruption = self.interruption
        holder = interruption.get("ResponsibleUserId")
        if interruption.get("IsPending") and holder and not interruption.get("HasResponsibility"):
            self._refuse(f"{self._user_name(holder)} has taken responsibility for it: left to them")
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
        now = self._read_interruption()
        if not now.get("IsPending"):
            if now.get("HasResponsibility") and _result_of(now) == self.record.result:
                self._relayed()
            else:
                self._refuse(self._closed_reason(now))
            return
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
        record = self.record
        record.status = "relayed"
        record.reason = None
        self._finish()
        parent = record.parent
        log.info(
            "approval relayed",
            interruption=record.interruption_id,
            project=record.project,
            step=record.step,
            result=record.result,
            approver=parent.approver.username if parent else None,
            parent_task=parent.task_id if parent else None,
        )

    def _refuse(self, reason: str) -> None:
        record = self.record
        record.status = "refused"
        record.reason = reason
        self._finish()
        log.info("approval not relayed", interruption=record.interruption_id, project=record.project, reason=reason)

    def _finish(self) -> None:
        record = self.record
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

    def _teams_of(self, user_id: str) -> dict[str, str]:
        """Team id → name for one user in this space (asked once per look: memberships change)."""
        if user_id not in self._teams:
            params: Params = {"userId": user_id, "spaces": self.space_id, "includeSystem": True}
            memberships = self.client.get("/api/teammembership", params) or []
            self._teams[user_id] = {item["TeamId"]: str(item.get("TeamName") or item["TeamId"]) for item in memberships}
        return self._teams[user_id]

    def _team_names(self, team_ids: list[str]) -> str:
        names = []
        for team_id in team_ids:
            try:
                names.append(str(self.client.get(f"/api/teams/{team_id}").get("Name") or team_id))
            except OctopusRequestFailed:
                names.append(team_id)
        return ", ".join(names) or "no team"

    def _user_name(self, user_id: str) -> str:
        try:
            user = self.directory.user(user_id)
        except OctopusRequestFailed:
            return user_id
        return f"{user.get('DisplayName') or user_id} ({user.get('Username') or user_id})"

    def _closed_reason(self, interruption: Doc) -> str:
        result = _result_of(interruption) or interruption.get("Form", {}).get("Values", {}).get("Guidance")
        holder = interruption.get("ResponsibleUserId")
        if result and holder:
            return f"no longer pending: {self._user_name(holder)} answered {result}"
        return "no longer pending: its deployment is over"

    def _setup_problem(self) -> str:
        """Why the service account cannot answer the step, with the fix."""
        record = self.record
        try:
            me = self.client.get("/api/users/me")
            teams = list(self._teams_of(me["Id"]).values())
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


def _result_of(interruption: Doc) -> str | None:
    values = (interruption.get("Form") or {}).get("Values") or {}
    result = values.get("Result")
    return str(result) if result else None


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _relaying_orchestrations(context: WorkerContext) -> list[Orchestration]:
    return [
        item
        for item in context.require_rules().orchestrations
        if item.approvals.enabled and item.parent_project is not None
    ]


def _orchestration_for(
    context: WorkerContext, directory: Directory, space_id: str, project: str
) -> Orchestration | None:
    """The orchestration that relays approvals into this component project, if any."""
    for orchestration in _relaying_orchestrations(context):
        if directory.space_id(orchestration.space) != space_id:
            continue
        if any(component.project.casefold() == project.casefold() for component in orchestration.components):
            return orchestration
    return None


def _space_of(event: OctopusEvent, context: WorkerContext, directory: Directory) -> str:
    if event.SpaceId:
        return event.SpaceId
    spaces = {directory.space_id(item.space) for item in _relaying_orchestrations(context)}
    if len(spaces) != 1:
        raise PermanentError(f"{event.Id} names no space, and the rules relay approvals in {len(spaces)} spaces")
    return spaces.pop()
