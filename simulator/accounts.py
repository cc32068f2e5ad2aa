"""Spaces, users, API keys and teams."""

from __future__ import annotations

import secrets
import string

from simulator.audit import write_event
from simulator.errors import bad_request
from simulator.permissions import ADMIN_TEAM_ID
from simulator.store import Doc, Store
from simulator.timeutil import iso
from simulator.validation import body_object, optional_bool, optional_str, required_str, str_list


def create_space(store: Store, body: object, *, space_id: str | None = None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    space_id = space_id or store.next_id("Spaces")
    if not store.claim_name("Space", None, name, space_id):
        raise bad_request(f"A space with the name '{name}' already exists.")
    space: Doc = {
        "Id": space_id,
        "Name": name,
        "Slug": name.lower().replace(" ", "-"),
        "Description": optional_str(data, "Description"),
        "IsDefault": optional_bool(data, "IsDefault", not store.spaces),
        "TaskQueueStopped": False,
        "SpaceManagersTeams": str_list(data, "SpaceManagersTeams"),
        "SpaceManagersTeamMembers": str_list(data, "SpaceManagersTeamMembers"),
        "LastModifiedOn": iso(store.now()),
        "Links": {
            "Self": f"/api/spaces/{space_id}",
            "SpaceHome": f"/api/{space_id}",
            "Web": f"/app#/{space_id}",
            "Logo": f"/api/spaces/{space_id}/logo",
            "Search": f"/api/spaces/{space_id}/search",
        },
    }
    store.spaces[space_id] = space
    return space


def create_user(store: Store, body: object) -> Doc:
    data = body_object(body)
    username = required_str(data, "Username")
    user_id = store.next_id("Users")
    if not store.claim_name("User", None, username, user_id):
        raise bad_request(f"A user with the username '{username}' already exists.")
    user: Doc = {
        "Id": user_id,
        "Username": username,
        "DisplayName": optional_str(data, "DisplayName") or username,
        "EmailAddress": optional_str(data, "EmailAddress"),
        "IsActive": optional_bool(data, "IsActive", True),
        "IsService": optional_bool(data, "IsService", False),
        "IsRequestor": False,
        "CanPasswordBeEdited": not optional_bool(data, "IsService", False),
        "Identities": [],
        "Links": {
            "Self": f"/api/users/{user_id}",
            "Permissions": f"/api/users/{user_id}/permissions",
            "PermissionsConfiguration": f"/api/users/{user_id}/permissions/configuration",
            "Spaces": f"/api/users/{user_id}/spaces",
            "Teams": f"/api/users/{user_id}/teams{{?spaces,includeSystem}}",
            "ApiKeys": f"/api/users/{user_id}/apikeys{{/id}}{{?skip,take}}",
            "Avatar": "https://www.gravatar.com/avatar/00000000000000000000000000000000?d=blank",
        },
    }
    store.users[user_id] = user
    write_event(
        store,
        category="Created",
        message=["User ", (username, user_id), " has been created"],
        related=[user_id],
        space_id=None,
    )
    return user


def add_api_key(store: Store, user_id: str, purpose: str, key: str | None = None) -> Doc:
    """Octopus keys look like API-XXXXXXXXXXXXXXXXXXXXXXXXXX (upper-case letters and digits)."""
    if key is None:
        alphabet = string.ascii_uppercase + string.digits
        key = "API-" + "".join(secrets.choice(alphabet) for _ in range(26))
    key_id = store.next_id("ApiKeys")
    record: Doc = {
        "Id": key_id,
        "Purpose": purpose,
        "UserId": user_id,
        "ApiKey": key,
        "Created": iso(store.now()),
        "Expires": None,
        "Links": {"Self": f"/api/users/{user_id}/apikeys/{key_id}", "User": f"/api/users/{user_id}"},
    }
    store.api_keys[key] = record
    return record


def create_team(store: Store, body: object, *, space_id: str | None, team_id: str | None = None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    team_id = team_id or store.next_id("Teams")
    if not store.claim_name("Team", space_id, name, team_id):
        raise bad_request(f"A team with the name '{name}' already exists.")
    members = str_list(data, "MemberUserIds")
    for user_id in members:
        if user_id not in store.users:
            raise bad_request(f"The user '{user_id}' does not exist.")
    built_in = team_id == ADMIN_TEAM_ID
    team: Doc = {
        "Id": team_id,
        "Name": name,
        "Slug": name.lower().replace(" ", "-"),
        "MemberUserIds": members,
        "ExternalSecurityGroups": [],
        "CanBeDeleted": not built_in,
        "CanBeRenamed": not built_in,
        "CanChangeRoles": not built_in,
        "CanChangeMembers": True,
        "Description": optional_str(data, "Description") or "",
        "SpaceId": space_id,
        "Links": {
            "Self": f"/api/teams/{team_id}",
            "ScopedUserRoles": f"/api/teams/{team_id}/scopeduserroles{{?skip,take}}",
        },
    }
    store.teams[team_id] = team
    return team


def update_team_members(store: Store, team: Doc, body: object) -> Doc:
    data = body_object(body)
    if "MemberUserIds" in data:
        members = str_list(data, "MemberUserIds")
        for user_id in members:
            if user_id not in store.users:
                raise bad_request(f"The user '{user_id}' does not exist.")
        team["MemberUserIds"] = members
    if "Description" in data:
        team["Description"] = optional_str(data, "Description") or ""
    if "Name" in data and data["Name"] != team["Name"]:
        name = required_str(data, "Name")
        if not store.claim_name("Team", team["SpaceId"], name, team["Id"]):
            raise bad_request(f"A team with the name '{name}' already exists.")
        store.release_name("Team", team["SpaceId"], team["Name"])
        team["Name"] = name
    return team


def team_memberships(store: Store, user_id: str, spaces: list[str], include_system: bool) -> list[Doc]:
    found: list[Doc] = []
    for team in store.teams.values():
        if user_id not in team["MemberUserIds"]:
            continue
        space_id = team["SpaceId"]
        if space_id is None and not include_system and spaces:
            continue
        if spaces and space_id is not None and space_id not in spaces:
            continue
        found.append(
            {
                "UserId": user_id,
                "TeamId": team["Id"],
                "TeamName": team["Name"],
                "SpaceId": space_id,
                "IsDirectlyAssigned": True,
                "ExternalSecurityGroups": [],
            }
        )
    return found
