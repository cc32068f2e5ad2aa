"""The audit log: events with increasing auto ids, Octopus's message references, and the query filters.

An event's id is `Events-<auto id>` by default. With `EventIdBlocks` set on the store, ids are allocated
as a server with several nodes does: each node takes a block of numbers and hands them out in turn, so
ids and auto ids differ and ids do not grow in the order events were written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from simulator.store import Doc, Store
from simulator.timeutil import iso

SYSTEM_USER_ID = "users-system"

# A message is a list of plain strings and (text, document id) pairs that become references.
MessagePart = str | tuple[str, str]

MACHINE_CATEGORIES = [
    "MachineAdded",
    "MachineDeleted",
    "MachineCleanupFailed",
    "MachineDeploymentRelatedPropertyWasUpdated",
    "MachineDisabled",
    "MachineEnabled",
    "MachineHealthy",
    "MachineUnavailable",
    "MachineUnhealthy",
    "MachineHasWarnings",
]
DEPLOYMENT_CATEGORIES = [
    "DeploymentQueued",
    "DeploymentStarted",
    "DeploymentResumed",
    "DeploymentSucceeded",
    "DeploymentFailed",
    "ManualInterventionInterruptionRaised",
    "GuidedFailureInterruptionRaised",
]
# No public source confirms an id for "interruption submitted"; consumers match the Message prefix.
INTERRUPTION_SUBMITTED = "InterruptionSubmitted"
OTHER_CATEGORIES = ["Created", "Modified", "Deleted", INTERRUPTION_SUBMITTED, "TaskCanceled"]
ALL_CATEGORIES = MACHINE_CATEGORIES + DEPLOYMENT_CATEGORIES + OTHER_CATEGORIES

EVENT_GROUPS: dict[str, list[str]] = {
    "Machine": [c for c in MACHINE_CATEGORIES if c != "MachineDeleted"],
    "MachineCritical": ["MachineCleanupFailed", "MachineUnavailable"],
    "MachineAvailableForDeployment": ["MachineEnabled", "MachineHealthy", "MachineHasWarnings"],
    "MachineUnavailableForDeployment": ["MachineDisabled", "MachineUnavailable", "MachineUnhealthy"],
    "MachineHealthChanged": ["MachineHealthy", "MachineUnavailable", "MachineUnhealthy", "MachineHasWarnings"],
    # Group ids below are inferred from the UI names; their membership is the simulator's choice.
    "Deployment": DEPLOYMENT_CATEGORIES,
    "DeploymentCritical": [
        "DeploymentFailed",
        "ManualInterventionInterruptionRaised",
        "GuidedFailureInterruptionRaised",
    ],
    "Document": ["Created", "Modified", "Deleted"],
}

_WEB_PATHS = {
    "Deployments": "deployments",
    "Projects": "projects",
    "Releases": "releases",
    "Environments": "infrastructure/environments",
    "Machines": "infrastructure/machines",
    "Tenants": "tenants",
    "ServerTasks": "tasks",
    "Interruptions": "tasks",
    "Users": "configuration/users",
    "Teams": "configuration/teams",
    "Subscriptions": "configuration/subscriptions",
    "Channels": "projects/channels",
    "Lifecycles": "library/lifecycles",
    "ProjectGroups": "projects/groups",
}


@dataclass
class EventIdBlocks:
    """Event ids in blocks of `block_size` per node; the nodes write events in turn (auto id modulo nodes)."""

    nodes: int
    block_size: int
    next_block: int  # the first number of the next block handed out
    # Per node: the next number it gives and the end of its block (exclusive); empty until its first event.
    blocks: dict[int, tuple[int, int]] = field(default_factory=dict)

    def allocate(self, auto_id: int) -> int:
        node = auto_id % self.nodes
        number, end = self.blocks.get(node, (0, 0))
        if number >= end:
            number, end = self.next_block, self.next_block + self.block_size
            self.next_block = end
        self.blocks[node] = (number + 1, end)
        return number

    def to_json(self) -> Doc:
        return {"Nodes": self.nodes, "BlockSize": self.block_size}


def use_event_id_blocks(store: Store, *, nodes: int, block_size: int) -> EventIdBlocks:
    """From now on, allocate event ids in blocks per node, above every id given so far."""
    highest = max((int(event_id.rsplit("-", 1)[1]) for event_id in store.event_auto_ids), default=0)
    store.event_id_blocks = EventIdBlocks(nodes=nodes, block_size=block_size, next_block=highest + 1)
    return store.event_id_blocks


def _web_href(space_id: str | None, doc_id: str) -> str:
    section = _WEB_PATHS.get(doc_id.split("-")[0], "documents")
    prefix = f"#/{space_id}/" if space_id else "#/"
    return f"{prefix}{section}/{doc_id}"


def write_event(
    store: Store,
    *,
    category: str,
    message: Sequence[MessagePart],
    related: Iterable[str],
    space_id: str | None,
    user: Doc | None = None,
    comments: str | None = None,
    details: str | None = None,
    occurred: datetime | None = None,
) -> Doc:
    """Append one event with the next auto id, and an Id from the store's id allocation."""
    auto_id = len(store.events) + 1
    blocks = store.event_id_blocks
    event_id = f"Events-{blocks.allocate(auto_id) if blocks is not None else auto_id}"
    store.event_auto_ids[event_id] = auto_id
    text = ""
    html = ""
    references: list[Doc] = []
    for part in message:
        if isinstance(part, tuple):
            label, doc_id = part
            references.append({"ReferencedDocumentId": doc_id, "StartIndex": len(text), "Length": len(label)})
            html += f"<a href='{_web_href(space_id, doc_id)}'>{escape(label)}</a>"
            text += label
        else:
            html += escape(part)
            text += part
    related_ids = list(dict.fromkeys(related))
    event: Doc = {
        "Id": event_id,
        "RelatedDocumentIds": related_ids,
        "Category": category,
        "UserId": user["Id"] if user else SYSTEM_USER_ID,
        "Username": user["Username"] if user else "system",
        "IsService": bool(user and user.get("IsService")),
        "IdentityEstablishedWith": "API key" if user else "",
        "UserAgent": "OctopusClient" if user else "Server",
        "Occurred": iso(occurred or store.now()),
        "Message": text,
        "MessageHtml": html,
        "MessageReferences": references,
        "Comments": comments,
        "Details": details,
        "ChangeDetails": {"Differences": None, "DocumentContext": None},
        "IpAddress": None,
        "SpaceId": space_id,
        "Links": {"Self": f"/api/events/{event_id}"},
    }
    store.events.append(event)
    for doc_id in related_ids:
        store.regarding[doc_id].append(auto_id)
    store.on_event()
    return event


def auto_id_of(event: Doc) -> int:
    return int(str(event["Id"]).rsplit("-", 1)[1])


def categories_for(groups: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for group in groups:
        found.update(EVENT_GROUPS.get(group, []))
    return found


def candidate_auto_ids(store: Store, regarding: list[str], regarding_any: list[str]) -> list[int] | None:
    """Use the regarding index when a document filter is given; None means scan everything."""
    if regarding:
        sets = [set(store.regarding.get(doc_id, [])) for doc_id in regarding]
        return sorted(set.intersection(*sets))
    if regarding_any:
        merged: set[int] = set()
        for doc_id in regarding_any:
            merged.update(store.regarding.get(doc_id, []))
        return sorted(merged)
    return None


def query_events(store: Store, query: dict[str, Any]) -> list[Doc]:
    """Events newest first, filtered as GET /api/events does."""
    auto_ids = candidate_auto_ids(store, query["regarding"], query["regardingAny"])
    low = max(1, query["fromAutoId"] or 1)
    high = min(len(store.events), query["toAutoId"] or len(store.events))
    auto_ids = list(range(low, high + 1)) if auto_ids is None else [a for a in auto_ids if low <= a <= high]
    categories = set(query["eventCategories"]) | categories_for(query["eventGroups"])
    any_of = [set(query[name]) for name in ("projects", "environments", "tenants") if query[name]]
    users = set(query["users"])
    spaces = set(query["spaces"])
    ids = set(query["ids"])
    start, end = query["from"], query["to"]
    found: list[Doc] = []
    for auto_id in reversed(auto_ids):
        event = store.events[auto_id - 1]
        if categories and event["Category"] not in categories:
            continue
        if users and event["UserId"] not in users:
            continue
        if ids and event["Id"] not in ids:
            continue
        if spaces and event["SpaceId"] not in spaces and not (event["SpaceId"] is None and query["includeSystem"]):
            continue
        related = event["RelatedDocumentIds"]
        if any_of and not all(wanted.intersection(related) for wanted in any_of):
            continue
        if start is not None or end is not None:
            occurred = event["Occurred"]
            if start is not None and occurred < start:
                continue
            if end is not None and occurred > end:
                continue
        found.append(event)
    return found
