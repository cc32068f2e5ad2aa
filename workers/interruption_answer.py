"""The conductor answering one of its own steps in Octopus (a parent's "Plan the release" or "Deploy the
components"): take responsibility as the service account and submit, once.

The interruption is read first: one already answered is not answered again (a retried job, a second event),
and one a person took is left to them. A 400 for an answer that got in meanwhile counts as done.
"""

from __future__ import annotations

from typing import Literal

from workers.octopus import OctopusBadRequest, OctopusClient

Answered = Literal["submitted", "already answered", "taken by a person"]


def answer_interruption(
    client: OctopusClient, space_id: str, interruption_id: str, *, result: Literal["Proceed", "Abort"], notes: str
) -> Answered:
    """Submit `result` with `notes` into the interruption, unless it is answered already or a person holds it."""
    path = f"/api/{space_id}/interruptions/{interruption_id}"
    current = client.get(path)
    if not current.get("IsPending"):
        return "already answered"
    if current.get("ResponsibleUserId") and not current.get("HasResponsibility"):
        return "taken by a person"
    try:
        if not current.get("HasResponsibility"):
            client.put(f"{path}/responsible")
        client.post(f"{path}/submit", {"Instructions": None, "Notes": notes, "Result": result})
    except OctopusBadRequest:
        if client.get(path).get("IsPending"):
            raise
        return "already answered"
    return "submitted"
