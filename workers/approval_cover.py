"""Which person's answer, if any, covers a component deployment's manual intervention.

A relay needs an answer given by a person for this very component release, environment and tenant:

- a deployment the conductor made for a parent deployment (a promotion; `workers.approval_binding`) is
  covered by that parent deployment's answers, while the parent runs;
- a redeploy the conductor made is covered by a person's earlier answer at the same step of an earlier
  deployment of the same release to the same environment and tenant (rules `redeploy_approvals: reuse`);
  an earlier answer the service account submitted counts only where the conductor's own relay record
  names the person behind it;
- a deployment made by anyone else is left to people, unless the rules bind it (`bind_others`): then a
  parent deployment that succeeded, whose release's version gives a pattern the component's release
  matches, covers it. Running parent deployments neither count nor hide older ones. Never by creation time.

An answer counts only when it is complete, and given by a human (`IsService: false`, not the service
account) who is in one of the step's responsible teams other than the service account's own teams: the
service account's team is responsible for every component step by set-up, so its members approve nothing.

A component may live in another space than its parent (rules `space:`): the parent's answers are read in the
parent's space (not, as the step template does, in the child's), and whether a person counts is asked in the
component's space, where the step's responsible teams are: teams of that space, or system teams.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.approval_answers import Given, People
from workers.approval_binding import ApprovalBinding, ApprovalBindings, marker_name
from workers.approval_records import (
    ApprovalRelay,
    ApprovalStore,
    Approver,
    CoveringApproval,
    CoverKind,
)
from workers.directory import Directory, Doc, UnknownName
from workers.octopus import OctopusClient
from workers.release_pattern import derive_pattern, version_matches
from workers.rules import Orchestration

PARENT_DEPLOYMENTS_SCANNED = 50
EARLIER_DEPLOYMENTS_SCANNED = 50


@dataclass(frozen=True)
class Relay:
    approval: CoveringApproval


@dataclass(frozen=True)
class NotYet:
    reason: str


@dataclass(frozen=True)
class LeftToPeople:
    reason: str


Cover = Relay | NotYet | LeftToPeople


class CoverFinder:
    """Finds the answer that covers one component interruption, by the binding of its deployment."""

    def __init__(
        self,
        *,
        client: OctopusClient,
        directory: Directory,
        people: People,
        bindings: ApprovalBindings,
        relays: ApprovalStore,
        record: ApprovalRelay,
        interruption: Doc,
        orchestration: Orchestration,
    ) -> None:
        self.client = client
        self.directory = directory
        self.people = people
        self.bindings = bindings
        self.relays = relays
        self.record = record
        self.interruption = interruption
        self.orchestration = orchestration
        self.space_id = record.space_id

    def find(self) -> Cover:
        record = self.record
        deployment = self.client.get(f"/api/{self.space_id}/deployments/{record.deployment_id}")
        binding = self._binding(deployment)
        if isinstance(binding, LeftToPeople):
            return binding
        if binding is not None and binding.kind == "parent":
            return self._ordered_by_parent(binding)
        if binding is not None and binding.kind == "unattended":
            return LeftToPeople(
                "a promotion on demand, with no parent deployment: Release Conductor approves nothing on anyone's "
                "behalf"
            )
        if binding is not None:
            if self.orchestration.approvals.redeploy_approvals == "leave_to_people":
                return LeftToPeople(
                    "a redeploy by Release Conductor, and the rules say redeploy_approvals: leave_to_people"
                )
            return self._earlier_approval()
        if self.orchestration.approvals.bind_others is None:
            deployed_by = deployment.get("DeployedBy") or "a person"
            return LeftToPeople(
                f"{record.project} {record.release_version} was deployed by {deployed_by}, not by Release Conductor, "
                "and the rules bind no such deployment to a parent (approvals.bind_others)"
            )
        return self._bound_by_rule(self.orchestration.approvals.bind_others.release_pattern)

    def _binding(self, deployment: Doc) -> ApprovalBinding | LeftToPeople | None:
        """The binding the conductor recorded for this deployment; None for one made by someone else."""
        if deployment.get("DeployedById") != self.people.service_account["Id"]:
            return None
        name = marker_name(deployment.get("Comments"))
        binding = self.bindings.load(name) if name else None
        if binding is None:
            return LeftToPeople(
                "made by the service account, but Release Conductor holds no record of what it was for "
                "(no binding under its marker): left to people"
            )
        if not binding.covers(deployment):
            return LeftToPeople(
                f"its release, environment or tenant differ from what Release Conductor recorded for {binding.marker}"
            )
        return binding

    # --- a promotion: the parent deployment that ordered it ------------------------------------------

    def _ordered_by_parent(self, binding: ApprovalBinding) -> Cover:
        """The parent's answers, read in the parent's own space (which may not be the component's); whether the
        person counts is asked in the component's space, where the step's teams are."""
        assert binding.parent_deployment_id is not None
        space_id = binding.parent_space_id or self.space_id
        parent = self.client.get(f"/api/{space_id}/deployments/{binding.parent_deployment_id}")
        task = self.client.get(f"/api/tasks/{parent['TaskId']}")
        described = self._describe(parent, space_id)
        answers = [
            given for given in self.people.answers(task["Id"], space_id=space_id) if self.people.is_human(given.user)
        ]
        aborts = [given for given in answers if given.result == "Abort"]
        if aborts:
            return self._abort(parent, aborts, described, space_id)
        if task.get("State") != "Executing":
            return LeftToPeople(
                f"the parent deployment that ordered it, {described}, is {task.get('State')}: "
                "its approvals count only while it runs"
            )
        return self._proceed_from(parent, answers, kind="ordered_by_parent", space_id=space_id) or NotYet(
            self._no_approver(answers, described)
        )

    def _abort(self, parent: Doc, aborts: list[Given], described: str, space_id: str) -> Cover:
        who = ", ".join(f"{g.user['Username']} at '{g.interruption.get('Title')}'" for g in aborts)
        if not self.orchestration.approvals.relay_abort:
            return LeftToPeople(f"{described} was aborted by {who}; relay_abort is off, so this step is left to people")
        for given in aborts:
            team = self.people.team_in_charge(given.user, self.interruption)
            if team is not None:
                return Relay(self._approval(parent, given, team, kind="ordered_by_parent", space_id=space_id))
        return LeftToPeople(f"{described} was aborted by {who}, who is in no team responsible for this step")

    # --- a redeploy: a person's earlier answer for this very release ---------------------------------

    def _earlier_approval(self) -> Cover:
        record = self.record
        path = f"/api/{self.space_id}/releases/{record.release_id}/deployments"
        for earlier in self.client.items(path, limit=EARLIER_DEPLOYMENTS_SCANNED):
            if earlier["Id"] == record.deployment_id or earlier.get("EnvironmentId") != record.environment_id:
                continue
            if (earlier.get("TenantId") or None) != record.tenant_id:
                continue
            for given in self.people.answers(earlier["TaskId"], step=record.step):
                if given.result != "Proceed":
                    continue
                found = self._person_behind(earlier, given)
                if found is not None:
                    return Relay(found)
        tenant = f" for tenant {record.tenant}" if record.tenant else ""
        return LeftToPeople(
            f"no person in a team responsible for '{record.step}' approved {record.project} "
            f"{record.release_version} to {record.environment}{tenant} before, so this redeploy is left to people"
        )

    def _person_behind(self, earlier: Doc, given: Given) -> CoveringApproval | None:
        """The earlier answer as a person's approval: given by that person, or relayed by the conductor for one."""
        team = self.people.team_in_charge(given.user, self.interruption)
        if team is not None:
            return self._approval(earlier, given, team, kind="earlier_approval")
        if given.user.get("Id") != self.people.service_account["Id"]:
            return None
        relayed = self.relays.load(given.interruption["Id"])
        if relayed is None or relayed.status != "relayed" or relayed.covered_by is None or relayed.result != "Proceed":
            return None  # the service account's own answer, with no person behind it on record
        behind = relayed.covered_by
        person = self.directory.user(behind.approver.user_id)
        team = self.people.team_in_charge(person, self.interruption)
        if team is None:
            return None
        approval = self._approval(
            earlier, Given(given.interruption, "Proceed", person, behind.approved_at), team, kind="earlier_approval"
        )
        return approval.model_copy(update={"relayed_by_conductor": True})

    # --- a deployment made by someone else, bound by the rules ---------------------------------------

    def _bound_by_rule(self, template: str) -> Cover:
        record = self.record
        approvals = self.orchestration.approvals
        assert self.orchestration.parent_project is not None
        # The parent lives in the orchestration's space; the component's environment and tenant by name there.
        space_id = self.directory.space_id(self.orchestration.space)
        parent_project = self.directory.project(space_id, self.orchestration.parent_project)
        environment = self.directory.environment(space_id, approvals.environment or record.environment)
        tenant_id = self._tenant_in(space_id)
        params = {"projects": parent_project["Id"], "environments": environment["Id"], "taskState": "Success"}
        path = f"/api/{space_id}/deployments"
        for parent in self.client.items(path, params, limit=PARENT_DEPLOYMENTS_SCANNED):
            if approvals.tenant == "same" and parent.get("TenantId") not in (None, tenant_id):
                continue
            version = self.directory.release(space_id, parent["ReleaseId"])["Version"]
            pattern = derive_pattern(template, version)
            if pattern is None or not version_matches(record.release_version, pattern):
                continue
            answers = [
                given
                for given in self.people.answers(parent["TaskId"], space_id=space_id)
                if self.people.is_human(given.user)
            ]
            found = self._proceed_from(parent, answers, kind="bound_by_rule", space_id=space_id)
            if found is not None:
                return Relay(found.approval.model_copy(update={"pattern": pattern}))
        return NotYet(
            f"no deployment of {parent_project['Name']} to {environment['Name']} that succeeded, whose release "
            f"gives a pattern ({template}) that {record.release_version} matches, has a Proceed from a person in a "
            f"team responsible for this step ({self.people.team_names(self.people.approving_teams(self.interruption))})"
        )

    # --- answers and who gave them -------------------------------------------------------------------

    def _tenant_in(self, space_id: str) -> str | None:
        """The component deployment's tenant as the tenant of the same name in `space_id` (None: it has none)."""
        record = self.record
        if record.tenant_id is None or space_id == self.space_id:
            return record.tenant_id
        try:
            return str(self.directory.tenant(space_id, record.tenant or "")["Id"])
        except UnknownName:
            return None

    def _proceed_from(self, parent: Doc, answers: list[Given], *, kind: CoverKind, space_id: str) -> Relay | None:
        for given in answers:
            if given.result != "Proceed":
                continue
            team = self.people.team_in_charge(given.user, self.interruption)
            if team is not None:
                return Relay(self._approval(parent, given, team, kind=kind, space_id=space_id))
        return None

    def _no_approver(self, answers: list[Given], described: str) -> str:
        proceeds = [given for given in answers if given.result == "Proceed"]
        if not proceeds:
            return f"no approval yet in {described}"
        approvers = ", ".join(
            f"{g.user['Username']} ({', '.join(self.people.teams_of(g.user['Id']).values()) or 'no team'})"
            for g in proceeds
        )
        teams = self.people.team_names(self.people.approving_teams(self.interruption))
        return f"no approver in {described} is in a team responsible for this step ({teams}); approved by {approvers}"

    def _approval(
        self, deployment: Doc, given: Given, team: str, *, kind: CoverKind, space_id: str | None = None
    ) -> CoveringApproval:
        """The answer given in `deployment`, which is in `space_id` (default: the component's)."""
        space_id = space_id or self.space_id
        tenant_id = deployment.get("TenantId")
        release = self.directory.release(space_id, deployment["ReleaseId"])
        project = self.directory.project_by_id(space_id, deployment["ProjectId"])
        environment = self.directory.environment_by_id(space_id, deployment["EnvironmentId"])
        base = (self.record.server_uri or self.client.base_url).rstrip("/")
        return CoveringApproval(
            kind=kind,
            project=project["Name"],
            release_version=release["Version"],
            environment=environment["Name"],
            tenant=self.directory.tenant_by_id(space_id, tenant_id)["Name"] if tenant_id else None,
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
            link=f"{base}/app#/{space_id}/tasks/{deployment['TaskId']}",
        )

    def _describe(self, parent: Doc, space_id: str) -> str:
        project = self.directory.project_by_id(space_id, parent["ProjectId"])["Name"]
        environment = self.directory.environment_by_id(space_id, parent["EnvironmentId"])["Name"]
        tenant_id = parent.get("TenantId")
        tenant = f" for tenant {self.directory.tenant_by_id(space_id, tenant_id)['Name']}" if tenant_id else ""
        return f"{project} to {environment}{tenant} ({parent['Id']})"
