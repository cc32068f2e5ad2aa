"""A queued event's JSON written by orjson is byte for byte what pydantic's `model_dump_json` writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from workers.event_json import queued_event_json
from workers.events import OctopusEvent, QueuedEvent, WebhookEnvelope

WEBHOOKS = sorted((Path(__file__).parent / "fixtures" / "webhooks").glob("*.json"))


def from_body(body: bytes, received_at: datetime) -> QueuedEvent:
    return QueuedEvent.from_webhook(WebhookEnvelope.model_validate_json(body), received_at=received_at)


@pytest.mark.parametrize("path", WEBHOOKS, ids=[path.stem for path in WEBHOOKS])
def test_every_sample_webhook_is_written_as_pydantic_writes_it(path: Path) -> None:
    queued = from_body(path.read_bytes(), datetime(2026, 12, 1, 18, 0, 0, 123456, tzinfo=UTC))

    assert queued.event.__pydantic_extra__, "the sample has fields the model does not name"
    assert queued_event_json(queued) == queued.model_dump_json().encode()


def event_with(extra: dict[str, Any], occurred: str = "2023-09-14T21:35:08.513+00:00") -> dict[str, Any]:
    return {
        "Payload": {
            "Event": {
                "Id": "Events-7",
                "Category": "DeploymentSucceeded",
                "RelatedDocumentIds": ["Deployments-1"],
                "Occurred": occurred,
                **extra,
            },
            "ServerUri": "https://octopus.example",
            "BatchId": "b-1",
        }
    }


@pytest.mark.parametrize(
    ("extra", "occurred"),
    [
        pytest.param({}, "2023-09-14T21:35:08Z", id="no-extras-whole-seconds"),
        pytest.param({"Ratio": 0.1, "Big": 1e300, "Small": -2.5e-8, "Whole": 3.0, "Count": -12}, None, id="numbers"),
        pytest.param({"Text": 'Zürich ✓ \u2028 "quoted" back\\slash\ttab\nline\u0001\u001f\u007f'}, None, id="text"),
        pytest.param({"Nested": {"a": [1, {"b": None, "c": [True, False]}], "": {}}, "Empty": []}, None, id="nested"),
        pytest.param({"Message": None, "SpaceId": None}, "2023-09-14T23:35:08.000001+02:00", id="offset-and-nulls"),
        pytest.param({"Extra": "x"}, "2023-09-14T21:35:08.5", id="naive-time"),
        pytest.param({"Negative": "x"}, "2023-09-14T21:35:08-05:30", id="negative-offset"),
    ],
)
def test_edge_values_are_written_as_pydantic_writes_them(extra: dict[str, Any], occurred: str | None) -> None:
    body = json.dumps(event_with(extra, occurred or "2023-09-14T21:35:08.513+00:00"), ensure_ascii=False).encode()
    received = datetime(2026, 12, 1, 20, 0, tzinfo=timezone(timedelta(hours=2)))

    queued = from_body(body, received)

    assert queued_event_json(queued) == queued.model_dump_json().encode()


def test_what_orjson_refuses_is_written_by_pydantic() -> None:
    body = json.dumps(event_with({"Huge": 2**70})).encode()
    queued = from_body(body, datetime(2026, 12, 1, tzinfo=UTC))

    written = queued_event_json(queued)

    assert written == queued.model_dump_json().encode()
    assert json.loads(written)["event"]["Huge"] == 2**70


def test_an_event_built_in_python_is_written_as_pydantic_writes_it() -> None:
    """The reconciler and replay build events from Octopus's API answers, not from a webhook body."""
    event = OctopusEvent.model_validate(
        {"Id": "Events-9", "Category": "MachineAdded", "RelatedDocumentIds": [], "Occurred": "2024-01-02T03:04:05Z"}
    )
    queued = QueuedEvent(event=event, source="reconcile", received_at=datetime(2024, 1, 2, tzinfo=UTC))

    assert queued_event_json(queued) == queued.model_dump_json().encode()
