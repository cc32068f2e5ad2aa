"""Who may do what. Administrators may do everything; members of any other team may view, create
deployments, cancel tasks and handle interruptions their teams are responsible for; users in no team
may only view."""

from __future__ import annotations

from simulator.errors import forbidden
from simulator.store import Doc, Store

ADMIN_TEAM_ID = "teams-administrators"
TEAM_MEMBER_PERMISSIONS = frozenset({"DeploymentCreate", "InterruptionSubmit", "TaskCancel"})


def team_ids_of(store: Store, user_id: str) -> set[str]:
    return {team_id for team_id, team in store.teams.items() if user_id in team["MemberUserIds"]}


def is_admin(store: Store, user: Doc) -> bool:
    return user["Id"] in store.teams[ADMIN_TEAM_ID]["MemberUserIds"] if ADMIN_TEAM_ID in store.teams else False


def user_has(store: Store, user: Doc, permission: str) -> bool:
    if permission.endswith("View"):
        return True
    if is_admin(store, user):
        return True
    return permission in TEAM_MEMBER_PERMISSIONS and bool(team_ids_of(store, user["Id"]))


def require(store: Store, user: Doc, permission: str) -> None:
    if not user_has(store, user, permission):
        raise forbidden(permission)
