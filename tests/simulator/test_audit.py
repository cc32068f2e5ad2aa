"""The events API: shape, newest first, filters and the auto-id cursor."""

from __future__ import annotations

from simulator import seed
from tests.simulator.conftest import Api

EVENT_FIELDS = {
    "Id",
    "RelatedDocumentIds",
    "Category",
    "UserId",
    "Username",
    "IsService",
    "IdentityEstablishedWith",
    "UserAgent",
    "Occurred",
    "Message",
    "MessageHtml",
    "MessageReferences",
    "Comments",
    "Details",
    "ChangeDetails",
    "IpAddress",
    "SpaceId",
    "Links",
}


def _number(event_id: str) -> int:
    return int(event_id.split("-")[1])


def test_event_shape_and_newest_first(api: Api) -> None:
    items = api.json("/api/events", take=200)["Items"]
    assert set(items[0]) >= EVENT_FIELDS
    numbers = [_number(e["Id"]) for e in items]
    assert numbers == sorted(numbers, reverse=True)
    assert [e["Occurred"] for e in items] == sorted((e["Occurred"] for e in items), reverse=True)
    event = items[0]
    assert event["Links"]["Self"] == f"/api/events/{event['Id']}"
    assert api.json(f"/api/events/{event['Id']}") == event
    assert api.get("/api/events/Events-999999").status_code == 404


def test_message_references_point_into_the_message(api: Api) -> None:
    event = api.json("/api/events", eventCategories="DeploymentSucceeded", take=1)["Items"][0]
    assert event["UserId"] == "users-system"
    assert event["Username"] == "system"
    assert "succeeded  for" in event["Message"]  # Octopus's double space
    for ref in event["MessageReferences"]:
        text = event["Message"][ref["StartIndex"] : ref["StartIndex"] + ref["Length"]]
        assert text
        assert f">{text}</a>" in event["MessageHtml"]
    assert event["MessageReferences"][0]["ReferencedDocumentId"] == event["RelatedDocumentIds"][0]


def test_category_regarding_and_project_filters(api: Api) -> None:
    failed = api.json("/api/events", eventCategories="DeploymentFailed,MachineAdded", take=100)["Items"]
    assert {e["Category"] for e in failed} == {"DeploymentFailed", "MachineAdded"}
    web_api = api.json("/api/events", projects=seed.WEB_API_ID, eventCategories="DeploymentFailed")["Items"]
    assert len(web_api) == 1
    assert web_api[0]["RelatedDocumentIds"][1] == seed.WEB_API_ID
    grouped = api.json("/api/events", eventGroups="MachineAvailableForDeployment", take=100)["Items"]
    assert {e["Category"] for e in grouped} == {"MachineHealthy"}
    in_prod = api.json("/api/events", environments=seed.PRODUCTION_ID, eventCategories="DeploymentQueued", take=100)
    assert all(seed.PRODUCTION_ID in e["RelatedDocumentIds"] for e in in_prod["Items"])


def test_from_auto_id_cursor_sees_only_new_events(api: Api) -> None:
    newest = _number(api.json("/api/events", take=1)["Items"][0]["Id"])
    assert api.json("/api/events", fromAutoId=newest + 1)["Items"] == []
    body = {
        "Name": "cursor-01",
        "EnvironmentIds": [seed.TEST_ID],
        "Roles": ["web-server"],
        "SkipInitialHealthCheck": True,
    }
    machine = api.post("/api/Spaces-1/machines", body).json()
    fresh = api.json("/api/events", fromAutoId=newest + 1)["Items"]
    assert [e["Category"] for e in fresh] == ["MachineAdded"]
    assert _number(fresh[0]["Id"]) == newest + 1
    assert fresh[0]["RelatedDocumentIds"][0] == machine["Id"]
    inclusive = api.json("/api/events", fromAutoId=newest, toAutoId=newest)["Items"]
    assert [_number(e["Id"]) for e in inclusive] == [newest]


def test_date_range_and_spaces(api: Api) -> None:
    items = api.json("/api/events", take=50)["Items"]
    start, end = items[20]["Occurred"], items[10]["Occurred"]
    ranged = api.json("/api/events", **{"from": start, "to": end}, take=100)["Items"]
    assert ranged
    assert all(start <= e["Occurred"] <= end for e in ranged)
    system = api.json("/api/events", eventCategories="Created", take=500)["Items"]
    assert any(e["SpaceId"] is None for e in system)  # users are not in a space
    scoped = api.json("/api/events", spaces="Spaces-1", eventCategories="Created", take=500)["Items"]
    assert all(e["SpaceId"] == "Spaces-1" for e in scoped)
    with_system = api.json("/api/events", spaces="Spaces-1", includeSystem="true", eventCategories="Created", take=500)
    assert with_system["TotalResults"] == len([e for e in system if e["SpaceId"] in ("Spaces-1", None)])
    assert with_system["TotalResults"] < len(system)  # the second space's are not among them


def test_submitted_interruptions_in_history(api: Api) -> None:
    """The orchestration release 2021.1.0.1 was approved in Production by the three approvers, and Release
    Conductor answered its own two steps."""
    deployment = api.json("/api/Spaces-1/deployments", projects=seed.ORCHESTRATION_ID, environments=seed.PRODUCTION_ID)[
        "Items"
    ][0]
    events = api.json("/api/events", regardingAny=deployment["TaskId"], spaces="Spaces-1", includeSystem="true")
    approvers = {e["Username"] for e in events["Items"] if e["Message"].startswith("Submitted interruption")}
    assert approvers == {
        seed.QA_USERNAME,
        seed.WEB_ADMIN_USERNAME,
        seed.BUSINESS_OWNER_USERNAME,
        seed.CONDUCTOR_USERNAME,
    }
