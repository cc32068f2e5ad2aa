"""The Octopus subscription payload, and the event as the conductor queues it.

Strict where the conductor depends on a field (the event's id, category, related documents, space and
time); tolerant of everything else, including the shapes older Octopus servers send: batch counters as
strings, `Links.Self` as `{}`, enums as numbers, fields missing before spaces or batches existed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


EVENT_ID_PATTERN = r"^Events-[0-9]+$"


class OctopusEvent(BaseModel):
    """`Payload.Event`: an Octopus audit event (EventResource)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    Id: str = Field(pattern=EVENT_ID_PATTERN, max_length=64)
    Category: str = Field(min_length=1, max_length=128)
    RelatedDocumentIds: list[str]
    Occurred: datetime
    # Null for system-level documents, absent on servers older than spaces.
    SpaceId: str | None = None
    UserId: str | None = None
    Username: str | None = None
    Message: str | None = None

    def related(self, prefix: str) -> str | None:
        """The first related document id of one kind, e.g. `related("Deployments-")`."""
        return next((doc for doc in self.RelatedDocumentIds if doc.startswith(prefix)), None)

    def related_all(self, prefix: str) -> list[str]:
        return [doc for doc in self.RelatedDocumentIds if doc.startswith(prefix)]


class SubscriptionPayload(BaseModel):
    """`Payload`: one event and the batch it was delivered in.

    `Payload.Subscription` and any field not named here are not even parsed: the conductor does not use
    them, and the subscription holds the webhook header value."""

    model_config = ConfigDict(extra="ignore")

    Event: OctopusEvent
    ServerUri: str | None = None
    ServerAuditUri: str | None = None
    BatchProcessingDate: datetime | None = None
    BatchId: str | None = None
    TotalEventsInBatch: int | None = None
    EventNumberInBatch: int | None = None


class WebhookEnvelope(BaseModel):
    """The whole body of an Octopus subscription webhook."""

    model_config = ConfigDict(extra="ignore")

    Payload: SubscriptionPayload
    Timestamp: datetime | None = None
    EventType: str | None = None


Source = Literal["webhook", "reconcile", "replay"]


class QueuedEvent(BaseModel):
    """What a job carries: the event and where it came from, never the subscription.

    The subscription is left behind on purpose: it can hold the webhook header value.
    """

    model_config = ConfigDict(frozen=True)

    event: OctopusEvent
    source: Source
    received_at: datetime
    server_uri: str | None = None
    batch_id: str | None = None

    @classmethod
    def from_webhook(cls, envelope: WebhookEnvelope, *, received_at: datetime) -> QueuedEvent:
        payload = envelope.Payload
        return cls(
            event=payload.Event,
            source="webhook",
            received_at=received_at,
            server_uri=payload.ServerUri,
            batch_id=payload.BatchId,
        )

    def job_argument(self) -> dict[str, Any]:
        """The JSON-safe form given to the RQ job."""
        return self.model_dump(mode="json")
