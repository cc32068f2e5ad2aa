"""Who answered which manual intervention, and who they are: users, their teams, the service account.

Memberships change, so a `People` lives for one look of the relay and asks Octopus once per user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workers.approval_records import RelayResult
from workers.directory import Directory, Doc
from workers.octopus import OctopusClient, OctopusRequestFailed, Params

MANUAL = "ManualIntervention"
RESULTS: tuple[RelayResult, ...] = ("Proceed", "Abort")
EVENTS_SCANNED = 500
# No public source confirms a category id for a submitted interruption (the simulator writes this one);
# Octopus's own step templates match the message instead, and so does the relay.
SUBMITTED_CATEGORY = "InterruptionSubmitted"
SUBMITTED_MESSAGE = "Submitted interruption"
LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Given:
    """One completed answer to a manual intervention, and who gave it."""

    interruption: Doc
    result: RelayResult
    user: Doc
    at: datetime | None


class People:
    """Users and teams as Octopus has them now, looked up once per look (memberships change)."""

    def __init__(self, client: OctopusClient, directory: Directory, space_id: str) -> None:
        self.client = client
        self.directory = directory
        self.space_id = space_id
        self._teams: dict[str, dict[str, str]] = {}
        self._me: Doc | None = None

    @property
    def service_account(self) -> Doc:
        if self._me is None:
            self._me = self.client.get("/api/users/me")
        return self._me

    def teams_of(self, user_id: str) -> dict[str, str]:
        """Team id → name for one user, in this space (the interruption's) and system-wide: a component's step
        is owned by teams of its own space or by system teams (`SpaceId: null`)."""
        if user_id not in self._teams:
            params: Params = {"userId": user_id, "spaces": self.space_id, "includeSystem": True}
            memberships = self.client.get("/api/teammembership", params) or []
            self._teams[user_id] = {item["TeamId"]: str(item.get("TeamName") or item["TeamId"]) for item in memberships}
        return self._teams[user_id]

    def is_human(self, user: Doc) -> bool:
        return not user.get("IsService") and user.get("Id") != self.service_account["Id"]

    def approving_teams(self, interruption: Doc) -> set[str]:
        """The step's responsible teams whose members may approve it: all but the service account's."""
        own = set(self.teams_of(self.service_account["Id"]))
        return set(interruption.get("ResponsibleTeamIds") or []) - own

    def team_in_charge(self, user: Doc, interruption: Doc) -> str | None:
        """The name of a team of `user` that may approve `interruption`, if the user is a human in one."""
        if not self.is_human(user):
            return None
        approving = self.approving_teams(interruption)
        return next((name for team_id, name in self.teams_of(user["Id"]).items() if team_id in approving), None)

    def user_name(self, user_id: str) -> str:
        try:
            user = self.directory.user(user_id)
        except OctopusRequestFailed:
            return user_id
        return f"{user.get('DisplayName') or user_id} ({user.get('Username') or user_id})"

    def team_names(self, team_ids: list[str] | set[str]) -> str:
        names = []
        for team_id in sorted(team_ids):
            try:
                names.append(str(self.client.get(f"/api/teams/{team_id}").get("Name") or team_id))
            except OctopusRequestFailed:
                names.append(team_id)
        return ", ".join(names) or "no team"

    def answers(self, task_id: str, *, step: str | None = None, space_id: str | None = None) -> list[Given]:
        """The completed manual interventions of a task (of one step, if named), earliest first. `space_id` is the
        task's space where it is not this one's: a parent deployment's answers are read where the parent is."""
        space = space_id or self.space_id
        submitted = [
            item
            for item in self.client.items(f"/api/{space}/interruptions", {"regarding": task_id})
            if item.get("Type") == MANUAL
            and not item.get("IsPending")
            and result_of(item) in RESULTS
            and item.get("ResponsibleUserId")
            and (step is None or item.get("Title") == step)
        ]
        if not submitted:
            return []
        times = self._submission_times(task_id, space)
        given = []
        for item in submitted:
            result = result_of(item)
            assert result in RESULTS
            given.append(Given(item, result, self.directory.user(item["ResponsibleUserId"]), times.get(item["Id"])))
        return sorted(given, key=lambda item: item.at or LATEST)

    def _submission_times(self, task_id: str, space_id: str) -> dict[str, datetime]:
        """When each interruption of a task was submitted, from the audit log (newest event first), in the task's
        own space."""
        times: dict[str, datetime] = {}
        params: Params = {"regardingAny": task_id, "spaces": space_id, "includeSystem": True}
        for event in self.client.items("/api/events", params, limit=EVENTS_SCANNED):
            message = str(event.get("Message") or "")
            if event.get("Category") != SUBMITTED_CATEGORY and not message.startswith(SUBMITTED_MESSAGE):
                continue
            about = set(event.get("RelatedDocumentIds") or [])
            about |= {str(ref.get("ReferencedDocumentId")) for ref in event.get("MessageReferences") or []}
            occurred = when(event.get("Occurred"))
            for doc_id in about:
                if doc_id.startswith("Interruptions-") and occurred is not None:
                    times.setdefault(doc_id, occurred)
        return times


def result_of(interruption: Doc) -> str | None:
    values = (interruption.get("Form") or {}).get("Values") or {}
    result = values.get("Result")
    return str(result) if result else None


def when(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None
