"""Interruptions: manual interventions and guided failures, their forms, responsibility and submission."""

from __future__ import annotations

import uuid

from simulator.audit import INTERRUPTION_SUBMITTED, write_event
from simulator.errors import bad_request, forbidden
from simulator.permissions import is_admin, team_ids_of, user_has
from simulator.store import Doc, Store
from simulator.targeting import PlannedAction
from simulator.timeutil import iso

MANUAL = "ManualIntervention"
GUIDED = "GuidedFailure"


def _element(name: str, control: Doc, required: bool = False) -> Doc:
    return {"Name": name, "Control": control, "IsValueRequired": required}


def manual_form(instructions: str | None) -> Doc:
    return {
        "Values": {"Instructions": None, "Notes": None, "Result": None},
        "Elements": [
            _element("Instructions", {"Type": "Paragraph", "Text": instructions or "", "ResolveLinks": False}),
            _element("Notes", {"Type": "TextArea", "Label": "Notes"}),
            _element(
                "Result",
                {
                    "Type": "SubmitButtonGroup",
                    "Buttons": [
                        {"Text": "Proceed", "Value": "Proceed", "RequiresConfirmation": False},
                        {"Text": "Abort", "Value": "Abort", "RequiresConfirmation": True},
                    ],
                },
            ),
        ],
    }


def guided_form(message: str, *, can_exclude: bool, can_ignore: bool) -> Doc:
    buttons = [
        {"Text": "Fail", "Value": "Fail", "RequiresConfirmation": False},
        {"Text": "Retry", "Value": "Retry", "RequiresConfirmation": False},
    ]
    if can_ignore:
        buttons.append({"Text": "Ignore", "Value": "Ignore", "RequiresConfirmation": False})
    if can_exclude:
        buttons.append({"Text": "Exclude machine from deployment", "Value": "Exclude", "RequiresConfirmation": False})
    return {
        "Values": {"Instructions": None, "Notes": None, "Guidance": None},
        "Elements": [
            _element("Instructions", {"Type": "Paragraph", "Text": message, "ResolveLinks": False}),
            _element("Notes", {"Type": "TextArea", "Label": "Notes"}),
            _element("Guidance", {"Type": "SubmitButtonGroup", "Buttons": buttons}, required=True),
        ],
    }


def raise_interruption(
    store: Store, *, task: Doc, deployment: Doc, action: PlannedAction, kind: str, failure: str = ""
) -> Doc:
    """Create a pending interruption for a deployment task and write the event Octopus writes."""
    interruption_id = store.next_id("Interruptions")
    space_id = deployment["SpaceId"]
    task_id = task["Id"]
    core = [deployment["Id"], task_id, deployment["ProjectId"], deployment["EnvironmentId"]]
    if kind == MANUAL:
        title = action.action_name
        form = manual_form(action.instructions)
        related = core
        teams = list(action.responsible_team_ids)
    else:
        title = f"{task['Description']} requires failure guidance"
        form = guided_form(
            failure, can_exclude=action.targets_machines and bool(action.machine_ids), can_ignore=not action.is_required
        )
        related = [task_id, deployment["Id"], deployment["ProjectId"], deployment["EnvironmentId"]]
        teams = []
    seed = uuid.uuid5(uuid.NAMESPACE_URL, f"{task_id}/{interruption_id}")
    doc: Doc = {
        "Id": interruption_id,
        "SpaceId": space_id,
        "Title": title,
        "Type": kind,
        "Created": iso(store.now()),
        "IsPending": True,
        "Form": form,
        "RelatedDocumentIds": related,
        "ResponsibleTeamIds": teams,
        "ResponsibleUserId": None,
        "CanTakeResponsibility": False,
        "HasResponsibility": False,
        "TaskId": task_id,
        "CorrelationId": f"{task_id}_{seed.hex[:10].upper()}/{seed.hex}/{uuid.uuid5(seed, 'c').hex}",
        "IsLinkedToOtherInterruption": False,
        "Links": {
            "Self": f"/api/{space_id}/interruptions/{interruption_id}",
            "Submit": f"/api/{space_id}/interruptions/{interruption_id}/submit",
            "Responsible": f"/api/{space_id}/interruptions/{interruption_id}/responsible",
        },
    }
    store.interruptions[interruption_id] = doc
    for doc_id in related:
        store.interruptions_regarding[doc_id].append(interruption_id)
    event_related = [
        deployment["Id"],
        task_id,
        interruption_id,
        deployment["ProjectId"],
        deployment["ReleaseId"],
        deployment["EnvironmentId"],
        deployment["ChannelId"],
    ]
    if deployment.get("TenantId"):
        event_related.append(deployment["TenantId"])
    if kind == MANUAL:
        message: list[str | tuple[str, str]] = [
            (deployment["Name"], deployment["Id"]),
            f" requires manual intervention: {title}",
        ]
        category = "ManualInterventionInterruptionRaised"
    else:
        message = [(deployment["Name"], deployment["Id"]), f" requires failure guidance: {action.action_name}"]
        category = "GuidedFailureInterruptionRaised"
    write_event(store, category=category, message=message, related=event_related, space_id=space_id)
    return doc


def can_take_responsibility(store: Store, interruption: Doc, user: Doc) -> bool:
    if not interruption["IsPending"] or not user_has(store, user, "InterruptionSubmit"):
        return False
    teams = interruption["ResponsibleTeamIds"]
    return is_admin(store, user) or not teams or bool(set(teams) & team_ids_of(store, user["Id"]))


def render(store: Store, interruption: Doc, user: Doc) -> Doc:
    """The caller-relative view: CanTakeResponsibility and HasResponsibility depend on who asks."""
    doc = dict(interruption)
    doc["CanTakeResponsibility"] = can_take_responsibility(store, interruption, user)
    doc["HasResponsibility"] = interruption["ResponsibleUserId"] == user["Id"]
    if interruption["ResponsibleUserId"]:
        doc["Links"] = {**interruption["Links"], "User": f"/api/users/{interruption['ResponsibleUserId']}"}
    return doc


def take_responsibility(store: Store, interruption: Doc, user: Doc) -> None:
    if not interruption["IsPending"]:
        raise bad_request("This interruption has already been submitted and can no longer be assigned.")
    if not can_take_responsibility(store, interruption, user):
        raise forbidden(
            "InterruptionSubmit",
            f"{user['DisplayName']} is not a member of a team responsible for this interruption.",
        )
    interruption["ResponsibleUserId"] = user["Id"]


def validate_submission(store: Store, interruption: Doc, user: Doc, values: object) -> dict[str, object]:
    """Check a submit request the way Octopus does; return the form values to store."""
    if not interruption["IsPending"]:
        raise bad_request("This interruption has already been submitted.")
    if not can_take_responsibility(store, interruption, user):
        raise forbidden("InterruptionSubmit", "You are not a member of a team responsible for this interruption.")
    holder = interruption["ResponsibleUserId"]
    if holder is None:
        raise bad_request("You must take responsibility for this interruption before submitting it.")
    if holder != user["Id"]:
        other = store.users.get(holder, {}).get("DisplayName", holder)
        raise bad_request(f"{other} has already taken responsibility for this interruption.")
    if not isinstance(values, dict):
        raise bad_request("The request body must be a JSON object of form values.")
    element_names = [element["Name"] for element in interruption["Form"]["Elements"]]
    merged: dict[str, object] = {name: interruption["Form"]["Values"].get(name) for name in element_names}
    for name in element_names:
        if name in values:
            merged[name] = values[name]
    button = "Result" if interruption["Type"] == MANUAL else "Guidance"
    allowed = next(
        [str(b["Value"]) for b in e["Control"]["Buttons"]]
        for e in interruption["Form"]["Elements"]
        if e["Name"] == button
    )
    chosen = merged.get(button)
    if chosen is None or chosen == "":
        raise bad_request(f"A value for '{button}' is required. Allowed values: {', '.join(allowed)}.")
    if chosen not in allowed:
        raise bad_request(f"'{chosen}' is not a valid value for '{button}'. Allowed values: {', '.join(allowed)}.")
    return merged


def record_submission(store: Store, interruption: Doc, user: Doc, values: dict[str, object]) -> None:
    """Close the interruption and write the audit event the step templates look for."""
    interruption["Form"] = {**interruption["Form"], "Values": values}
    interruption["IsPending"] = False
    choice = values.get("Result") or values.get("Guidance")
    task_id = interruption["TaskId"]
    related = [interruption["Id"], task_id, *[d for d in interruption["RelatedDocumentIds"] if d != task_id]]
    notes = values.get("Notes")
    write_event(
        store,
        category=INTERRUPTION_SUBMITTED,
        message=[
            "Submitted interruption ",
            (interruption["Title"], interruption["Id"]),
            f" with {choice} by {user['DisplayName']} ({user['Username']})",
        ],
        related=related,
        space_id=interruption["SpaceId"],
        user=user,
        comments=notes if isinstance(notes, str) else None,
    )


def regarding(store: Store, doc_id: str) -> list[Doc]:
    return [store.interruptions[i] for i in store.interruptions_regarding.get(doc_id, [])]


def cancel_pending(store: Store, task_id: str) -> None:
    """A finished or canceled task leaves no interruption pending."""
    for interruption in regarding(store, task_id):
        interruption["IsPending"] = False
