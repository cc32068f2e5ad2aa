"""Secrets never reach a log line: nested values, exceptions, and the standard library's loggers (RQ's)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from service import logs
from service.logs import SecretMasker

SECRET = "s3cret-api-key-value"


@pytest.fixture
def configured(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Logging configured as `conductor` does; configured again in the test itself, where capsys's stream is.
    RQ's worker sets its logger's level each time it works (an in-process demo leaves it at ERROR): reset here,
    as in a fresh `conductor` process, so that what another test left does not decide this one."""
    rq_worker = logging.getLogger("rq.worker")
    rq_worker.setLevel(logging.NOTSET)
    rq_worker.propagate = True
    try:
        yield capsys
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
            root.removeHandler(handler)
        structlog.reset_defaults()


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


def test_nested_values_and_exceptions_are_masked() -> None:
    masker = SecretMasker([SECRET])
    event = {
        "event": f"calling with {SECRET}",
        "request": {"headers": {"X-Octopus-ApiKey": SECRET}, "args": [f"key={SECRET}", 3]},
        "error": ValueError(f"refused {SECRET}"),
        "count": 2,
    }

    masked = masker(None, "info", event)

    text = json.dumps(masked, default=str)
    assert SECRET not in text
    assert masked["request"] == {"headers": {"X-Octopus-ApiKey": "***"}, "args": ["key=***", 3]}
    assert masked["error"] == "refused ***"
    assert masked["count"] == 2


def test_standard_library_and_rq_records_are_masked_and_rendered_as_json(
    configured: pytest.CaptureFixture[str],
) -> None:
    logs.configure(level="info", fmt="json", secrets=[SECRET])
    logging.getLogger("rq.worker").warning("job failed: %s", f"Authorization {SECRET}")
    try:
        raise RuntimeError(f"Octopus said no to {SECRET}")
    except RuntimeError:
        logging.getLogger("rq.worker").exception("job raised")

    found = lines(configured)

    assert [line["event"] for line in found] == ["job failed: Authorization ***", "job raised"]
    assert found[0]["logger"] == "rq.worker"
    assert found[0]["level"] == "warning"
    assert "RuntimeError: Octopus said no to ***" in found[1]["exception"]
    assert SECRET not in json.dumps(found)


def test_the_conductors_own_lines_are_masked_at_any_depth(configured: pytest.CaptureFixture[str]) -> None:
    logs.configure(level="info", fmt="json", secrets=[SECRET])
    structlog.get_logger("conductor.test").info("call", detail={"key": SECRET, "tries": [SECRET]})

    (line,) = lines(configured)

    assert line["detail"] == {"key": "***", "tries": ["***"]}


def test_level_is_accepted_in_any_case(configured: pytest.CaptureFixture[str]) -> None:
    logs.configure(level="warning", fmt="json", secrets=[])
    logging.getLogger("rq.worker").info("not shown")
    logging.getLogger("rq.worker").warning("shown")

    assert [line["event"] for line in lines(configured)] == ["shown"]
