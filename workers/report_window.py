"""How far back a deployment report reaches: `since` as a duration (`90m`, `24h`, `7d`) or an ISO 8601 time.

The conductor's records cover its retention (`workers.retention`); a window reaching further back is still
answered, from Octopus's deployments list alone for the older part (`workers.deployment_report`), up to
`LONGEST_DAYS`, which bounds how many pages of Octopus's list one report reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

DEFAULT_SINCE = "24h"
LONGEST_DAYS = 366
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d+)([smhdw])")
EXAMPLES = "a duration such as 90m, 24h or 7d, or an ISO 8601 time such as 2026-12-01T08:00:00Z"


class BadWindow(ValueError):
    """`since` could not be read; the message says what was wrong and what is accepted."""


def parse_since(text: str, *, now: datetime) -> datetime:
    """The start of the window `text` names, in UTC. Raises BadWindow."""
    raw = text.strip()
    if not raw:
        raise BadWindow(f"since is empty: give {EXAMPLES}")
    duration = _DURATION.fullmatch(raw.lower())
    if duration is not None:
        amount, unit = int(duration.group(1)), duration.group(2)
        if amount == 0:
            raise BadWindow(f"since {raw!r} is an empty window: give more than zero")
        try:
            since = now - timedelta(**{UNITS[unit]: amount})
        except OverflowError:
            since = datetime.min.replace(tzinfo=UTC)
    else:
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            raise BadWindow(f"since {raw!r} is neither {EXAMPLES}") from None
        # A time without an offset is read as UTC, the zone every time in the report is given in.
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        if since >= now:
            raise BadWindow(f"since {raw!r} is not in the past (it is now {now:%Y-%m-%dT%H:%M:%SZ})")
    if now - since > timedelta(days=LONGEST_DAYS):
        raise BadWindow(f"since {raw!r} reaches back more than {LONGEST_DAYS} days, the most a report covers")
    return since
