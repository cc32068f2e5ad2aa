"""Checks of who answered each manual intervention, read from Octopus: the conductor, naming the person whose
approval covers it, or a person, where the conductor left it to people and said why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import httpx

if TYPE_CHECKING:
    from demo.story import Story

Cover = Literal["parent", "earlier"]
NOTES_START = {"parent": "Approved in the parent", "earlier": "Approved earlier for this very release"}
SAYS = {"parent": "relaying the parent approval of", "earlier": "reusing the approval of"}


def check_answered(story: Story, client: httpx.Client, deployment_id: str, *, cover: Cover) -> None:
    """Each intervention of the deployment was answered: by the conductor relaying the approval that covers it
    (the parent's, or an earlier one of this very release), or by a person where the conductor left it to them."""
    found = story.interventions(client, deployment_id)
    if not found:
        story.outcome.check(False, f"{deployment_id} raised no manual intervention, though its process has some")
    for interruption in found:
        person = story.left_to_people.get(interruption["Id"])
        if person is not None:
            story.outcome.check(
                not interruption["IsPending"] and interruption["Form"]["Values"].get("Result") == "Proceed",
                f"'{interruption['Title']}' of {deployment_id} left to people by the conductor, approved by {person}",
            )
            continue
        values = interruption["Form"]["Values"]
        notes = str(values.get("Notes") or "")
        cast = story.cast
        named = [name for name in (cast.qa_username, cast.web_admin_username) if f"({name})" in notes]
        story.outcome.check(
            not interruption["IsPending"]
            and values.get("Result") == "Proceed"
            and interruption["ResponsibleUserId"] == cast.conductor_user_id
            and notes.startswith(NOTES_START[cover])
            and bool(named),
            f"'{interruption['Title']}' of {deployment_id} approved by the conductor, {SAYS[cover]} "
            f"{', '.join(named) or 'nobody'}",
        )


def check_left_to_people(story: Story, client: httpx.Client, deployment_id: str) -> None:
    """The conductor answered none of the deployment's interventions, and said why for each."""
    found = story.interventions(client, deployment_id)
    if not found:
        story.outcome.check(False, f"{deployment_id} raised no manual intervention, though its process has some")
    for interruption in found:
        record = story.approvals.load(interruption["Id"])
        reason = record.reason if record is not None else None
        story.outcome.check(
            interruption["ResponsibleUserId"] != story.cast.conductor_user_id
            and record is not None
            and record.status == "refused"
            and bool(reason)
            and interruption["Id"] in story.left_to_people,
            f"'{interruption['Title']}' of {deployment_id} not approved by the conductor ({reason}); "
            f"approved by {story.left_to_people.get(interruption['Id'], 'nobody')}",
        )
