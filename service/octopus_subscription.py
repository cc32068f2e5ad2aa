"""The Octopus subscription that delivers events to the intake, as the README's set-up describes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from workers.dispatch import SUBSCRIPTION_CATEGORIES


def create_subscription(
    octopus: httpx.Client,
    *,
    space_id: str,
    intake_url: str,
    header: str,
    secret: str,
    categories: Sequence[str] = SUBSCRIPTION_CATEGORIES,
) -> dict[str, Any]:
    """Create it through `POST /api/{space_id}/subscriptions` with a client holding an API key allowed to; returns
    it. A subscription delivers the events of its own space only: one per space the rules act in."""
    created = octopus.post(
        f"/api/{space_id}/subscriptions",
        json={
            "Name": "Release Conductor",
            "SpaceId": space_id,
            "EventNotificationSubscription": {
                "WebhookURI": f"{intake_url}/webhooks/octopus",
                "WebhookHeaderKey": header,
                "WebhookHeaderValue": secret,
                "WebhookTimeout": "00:00:10",
                "Filter": {"EventCategories": list(categories)},
            },
        },
    )
    created.raise_for_status()
    subscription: dict[str, Any] = created.json()
    return subscription
