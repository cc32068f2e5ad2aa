"""Subscriptions (event notification): creation, update and matching events against their filter."""

from __future__ import annotations

from urllib.parse import urlparse

from simulator.audit import categories_for
from simulator.errors import bad_request
from simulator.infrastructure import created_event
from simulator.store import Doc, Store
from simulator.timeutil import iso, parse_timespan
from simulator.validation import body_object, optional_bool, optional_str, required_str, str_list

FILTER_FIELDS = (
    "Users",
    "Projects",
    "ProjectGroups",
    "Environments",
    "EventGroups",
    "EventCategories",
    "EventAgents",
    "Tenants",
    "Tags",
    "DocumentTypes",
)


def _filter(raw: object) -> Doc:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_request("EventNotificationSubscription.Filter must be an object.")
    return {name: str_list(raw, name) for name in FILTER_FIELDS}


def _notification(raw: object, previous: Doc | None, store: Store) -> Doc:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise bad_request("EventNotificationSubscription must be an object.")
    uri = optional_str(raw, "WebhookURI")
    if uri is not None:
        parsed = urlparse(uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise bad_request(f"The WebhookURI '{uri}' is not an absolute http(s) URL.")
    timeout = optional_str(raw, "WebhookTimeout") or "00:00:10"
    try:
        if parse_timespan(timeout).total_seconds() <= 0:
            raise ValueError(timeout)
    except ValueError:
        raise bad_request(f"The WebhookTimeout '{timeout}' is not a positive TimeSpan such as 00:00:10.") from None
    previous = previous or {}
    header_value = raw.get("WebhookHeaderValue")
    if header_value is None:
        # The value is write-only: a PUT that echoes back the null keeps the stored value.
        header_value = previous.get("WebhookHeaderValue")
    cursor = raw.get("WebhookLastProcessedEventAutoId")
    if not isinstance(cursor, int):
        cursor = previous.get("WebhookLastProcessedEventAutoId", store.last_event_auto_id())
    return {
        "Filter": _filter(raw.get("Filter")),
        "EmailTeams": str_list(raw, "EmailTeams"),
        "EmailFrequencyPeriod": optional_str(raw, "EmailFrequencyPeriod") or "01:00:00",
        "EmailPriority": optional_str(raw, "EmailPriority") or "Normal",
        "EmailDigestLastProcessed": previous.get("EmailDigestLastProcessed"),
        "EmailDigestLastProcessedEventAutoId": previous.get("EmailDigestLastProcessedEventAutoId"),
        "EmailShowDatesInTimeZoneId": optional_str(raw, "EmailShowDatesInTimeZoneId") or "UTC",
        "WebhookURI": uri,
        "WebhookTeams": str_list(raw, "WebhookTeams"),
        "WebhookTimeout": timeout,
        "WebhookHeaderKey": optional_str(raw, "WebhookHeaderKey"),
        "WebhookHeaderValue": header_value,
        "WebhookLastProcessed": previous.get("WebhookLastProcessed", iso(store.now())),
        "WebhookLastProcessedEventAutoId": cursor,
    }


def create_subscription(store: Store, space_id: str, body: object, user: Doc | None) -> Doc:
    data = body_object(body)
    name = required_str(data, "Name")
    subscription_id = store.next_id("Subscriptions")
    if not store.claim_name("Subscription", space_id, name, subscription_id):
        raise bad_request(f"A subscription with the name '{name}' already exists in this space.")
    subscription: Doc = {
        "Id": subscription_id,
        "Name": name,
        "Type": "Event",
        "IsDisabled": optional_bool(data, "IsDisabled", False),
        "SpaceId": space_id,
        "EventNotificationSubscription": _notification(data.get("EventNotificationSubscription"), None, store),
        "Links": {"Self": f"/api/{space_id}/subscriptions/{subscription_id}"},
    }
    store.subscriptions[subscription_id] = subscription
    created_event(store, "Subscription", subscription, user)
    return subscription


def update_subscription(store: Store, subscription: Doc, body: object) -> Doc:
    data = body_object(body)
    if "Name" in data and data["Name"] != subscription["Name"]:
        name = required_str(data, "Name")
        if not store.claim_name("Subscription", subscription["SpaceId"], name, subscription["Id"]):
            raise bad_request(f"A subscription with the name '{name}' already exists in this space.")
        store.release_name("Subscription", subscription["SpaceId"], subscription["Name"])
        subscription["Name"] = name
    subscription["IsDisabled"] = optional_bool(data, "IsDisabled", subscription["IsDisabled"])
    if "EventNotificationSubscription" in data:
        subscription["EventNotificationSubscription"] = _notification(
            data["EventNotificationSubscription"], subscription["EventNotificationSubscription"], store
        )
    return subscription


def render(subscription: Doc) -> Doc:
    """The header value never leaves the server (rendered as null, as in every real payload)."""
    notification = dict(subscription["EventNotificationSubscription"])
    notification["WebhookHeaderValue"] = None
    return {**subscription, "EventNotificationSubscription": notification}


def event_matches(store: Store, subscription: Doc, event: Doc) -> bool:
    """Categories and groups together select event types; every other non-empty list must match."""
    if event["SpaceId"] not in (subscription["SpaceId"], None):
        return False
    flt = subscription["EventNotificationSubscription"]["Filter"]
    wanted = set(flt["EventCategories"]) | categories_for(flt["EventGroups"])
    if wanted and event["Category"] not in wanted:
        return False
    if flt["Users"] and event["UserId"] not in flt["Users"]:
        return False
    related = event["RelatedDocumentIds"]
    for name in ("Projects", "Environments", "Tenants"):
        if flt[name] and not set(flt[name]).intersection(related):
            return False
    if flt["ProjectGroups"]:
        groups = {store.projects[d]["ProjectGroupId"] for d in related if d in store.projects}
        if not groups.intersection(flt["ProjectGroups"]):
            return False
    if flt["DocumentTypes"]:
        types = {d.split("-")[0] for d in related}
        if not types.intersection(flt["DocumentTypes"]):
            return False
    return True
