"""Octopus's date and duration formats."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Octopus writes dates with milliseconds and an explicit offset: 2024-03-27T21:13:19.538+00:00."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date; a date without an offset is taken as UTC."""
    value = text.strip().replace("Z", "+00:00")
    # A '+' in a query string arrives as a space.
    if len(value) > 19 and value[-6] == " ":
        value = value[:-6] + "+" + value[-5:]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_timespan(text: str) -> timedelta:
    """Parse a .NET TimeSpan string such as "00:00:10" or "1.02:03:04.5"."""
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise ValueError(f"not a TimeSpan: {text!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    frac = float("0." + fraction) if fraction else 0.0
    return timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds) + frac)


def human_duration(delta: timedelta) -> str:
    """Octopus's task Duration is prose: "51 seconds", "1 minute", "2 hours"."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds} second" + ("s" if seconds != 1 else "")
