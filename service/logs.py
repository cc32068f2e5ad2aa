"""Structured logs: JSON when not on a terminal, one line per event, secrets masked as a last guard.

Records of the standard library's loggers (RQ, uvicorn, httpx) pass through the same masking and the same
renderer as the conductor's own, so a secret in a third-party message or traceback is masked too.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

MASK = "***"
# Secrets shorter than this are not masked: replacing every "ab" in a line would hide more than it protects.
MIN_MASKED_LENGTH = 4
_PLAIN = (int, float, bool, type(None), datetime)


class SecretMasker:
    """Replaces any configured secret that found its way into a log line, at any depth of the event."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [secret for secret in secrets if len(secret) >= MIN_MASKED_LENGTH]

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        secrets = self._secrets
        if not secrets:
            return event
        for key, value in event.items():
            if type(value) is str:  # most values of a line: checked here, without a call per value
                for secret in secrets:
                    if secret in value:
                        event[key] = self.mask(value)
                        break
            elif not isinstance(value, _PLAIN):
                event[key] = self.mask(value)
        return event

    def mask(self, value: Any) -> Any:
        """`value` with every secret replaced: strings, and the strings inside dicts, lists, tuples and sets;
        any other object (an exception, say) becomes its masked text if that text holds a secret."""
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, dict):
            return {self.mask(key): self.mask(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.mask(item) for item in value]
        text = str(value)
        masked = self.mask(text)
        return masked if masked != text else value


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler `configure` installs; marked so that configuring again replaces it."""


class _CurrentStderr:
    """Standard error as it is when a line is written, not as it was when the logs were configured: loggers
    are cached on first use, and a process that replaces sys.stderr (a test runner capturing output, a
    daemon redirecting it) would otherwise keep writing to the old, perhaps closed, stream."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def json_text(value: Any, **options: Any) -> str:
    """The JSON of a log line, by orjson (a fifth of the standard library's cost on the intake's line);
    `json.dumps` for what orjson refuses (an integer past 64 bits, say), so that a line is never lost."""
    try:
        return orjson.dumps(value, default=options.get("default"), option=_ORJSON_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError):
        fallback = options.get("default") or repr
        return json.dumps(value, default=lambda item: _iso(item) if isinstance(item, datetime) else fallback(item))


# The timestamp as TimeStamper(fmt="iso", utc=True) writes it ("...T18:08:33.899728Z"), from the datetime itself.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


_format_exc_info = structlog.processors.format_exc_info


def _json_head(logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """JSON lines: what add_log_level, TimeStamper and format_exc_info add, in one processor call per line.

    The time is the datetime itself, which orjson writes as ISO 8601 UTC in C (see `_ORJSON_OPTIONS`)."""
    event["level"] = "warning" if name == "warn" else "error" if name == "exception" else name
    event["timestamp"] = datetime.now(UTC)
    if "exc_info" in event:
        return _format_exc_info(logger, name, event)
    return event


def _structlog_fallback(value: Any) -> Any:
    """What structlog's JSONRenderer writes for a value JSON has no form for: its `__structlog__()`, or its repr."""
    as_structlog = getattr(value, "__structlog__", None)
    return as_structlog() if callable(as_structlog) else repr(value)


def _render_json(logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
    """The last processor of JSON lines, as JSONRenderer(serializer=json_text) without its indirections."""
    return json_text(event, default=_structlog_fallback)


def configure(*, level: str, fmt: str, secrets: Sequence[str] = ()) -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = _render_json if as_json else structlog.dev.ConsoleRenderer()
    numeric_level = logging.getLevelName(level.upper())
    masker = SecretMasker(secrets)
    head: list[Any] = (
        [_json_head]
        if as_json
        else [
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ]
    )
    structlog.configure(
        processors=[*head, masker, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = _Handler(_CurrentStderr())
    handler.setLevel(numeric_level)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, masker, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # One line per HTTP request to Octopus is noise at INFO; failures surface through our own errors.
    logging.getLogger("httpx").setLevel(max(numeric_level, logging.WARNING))
