"""Webhook delivery as Octopus does it: per subscription, one batch of the new matching events per pass,
one POST per event in the SubscriptionPayload envelope, the subscription's header and timeout, no retry;
a failed POST drops the rest of its batch and the cursor still moves past it (Octopus issue 7216)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from simulator.store import Doc, Store
from simulator.subscriptions import event_matches, render
from simulator.timeutil import iso, parse_timespan


@dataclass
class DeliveryLog:
    """The most recent delivery attempts, for the control surface (debugging and the demo)."""

    attempts: deque[Doc] = field(default_factory=lambda: deque(maxlen=1000))


def _audit_uri(public_url: str | None, space_id: str, events: list[Doc], processed: str) -> str | None:
    if not public_url:
        return None
    categories = ",".join(dict.fromkeys(e["Category"] for e in events))
    first = events[0]["Occurred"]
    return (
        f"{public_url}/app#/{space_id}/configuration/audit?eventCategories={quote(categories, safe=',')}"
        f"&from={quote(first, safe='')}&to={quote(processed, safe='')}"
    )


async def deliver_subscription(
    store: Store, subscription: Doc, client: httpx.AsyncClient, public_url: str | None, log: DeliveryLog
) -> Doc:
    notification = subscription["EventNotificationSubscription"]
    cursor = int(notification["WebhookLastProcessedEventAutoId"] or 0)
    last = store.last_event_auto_id()
    batch = [e for e in store.events[cursor:last] if event_matches(store, subscription, e)]
    processed_at = iso(store.now()) or ""
    # The cursor moves past everything this pass looked at, delivered or not.
    notification["WebhookLastProcessedEventAutoId"] = last
    notification["WebhookLastProcessed"] = processed_at
    summary: Doc = {
        "SubscriptionId": subscription["Id"],
        "Matched": len(batch),
        "Delivered": 0,
        "Failed": 0,
        "Dropped": 0,
    }
    if not batch or not notification.get("WebhookURI"):
        return summary
    batch_id = str(uuid.uuid4())
    header_key = notification.get("WebhookHeaderKey")
    header_value = notification.get("WebhookHeaderValue")
    timeout = parse_timespan(notification["WebhookTimeout"]).total_seconds()
    rendered = render(subscription)
    for number, event in enumerate(batch, start=1):
        envelope = {
            "Timestamp": iso(store.now()),
            "EventType": "SubscriptionPayload",
            "Payload": {
                "ServerUri": public_url,
                "ServerAuditUri": _audit_uri(public_url, subscription["SpaceId"], batch, processed_at),
                "BatchProcessingDate": processed_at,
                "Subscription": rendered,
                "Event": event,
                "BatchId": batch_id,
                "TotalEventsInBatch": len(batch),
                "EventNumberInBatch": number,
            },
        }
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if header_key:
            headers[header_key] = header_value or ""
        attempt: Doc = {
            "SubscriptionId": subscription["Id"],
            "EventId": event["Id"],
            "BatchId": batch_id,
            "At": iso(store.now()),
        }
        try:
            response = await client.post(
                notification["WebhookURI"], content=json.dumps(envelope), headers=headers, timeout=timeout
            )
            attempt["StatusCode"] = response.status_code
            ok = response.is_success
            attempt["Error"] = None if ok else f"HTTP {response.status_code}"
        except (httpx.HTTPError, OSError) as exc:
            ok = False
            attempt["StatusCode"] = None
            attempt["Error"] = f"{type(exc).__name__}: {exc}"
        attempt["Delivered"] = ok
        log.attempts.append(attempt)
        if ok:
            summary["Delivered"] += 1
            continue
        summary["Failed"] += 1
        summary["Dropped"] = len(batch) - number
        break
    return summary


async def deliver_pass(store: Store, client: httpx.AsyncClient, public_url: str | None, log: DeliveryLog) -> list[Doc]:
    """One pass over every enabled subscription; subscriptions are served side by side."""
    subscriptions = [s for s in store.subscriptions.values() if not s["IsDisabled"]]
    return list(await asyncio.gather(*(deliver_subscription(store, s, client, public_url, log) for s in subscriptions)))
