"""`since` of a deployment report: durations, ISO 8601 times, and what is refused, with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.report_window import BadWindow, parse_since

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90m", timedelta(minutes=90)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        (" 24H ", timedelta(hours=24)),
        ("366d", timedelta(days=366)),
    ],
)
def test_a_duration_reaches_back_from_now(text: str, back: timedelta) -> None:
    assert parse_since(text, now=NOW) == NOW - back


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("2026-12-01T08:00:00Z", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T10:00:00+02:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T08:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),  # no offset: UTC
        ("2026-11-30", datetime(2026, 11, 30, tzinfo=UTC)),
    ],
)
def test_an_iso_time_is_read_in_utc(text: str, since: datetime) -> None:
    found = parse_since(text, now=NOW)
    assert found == since
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "since is empty: give a duration such as 90m, 24h or 7d, or an ISO 8601 time"),
        ("yesterday", "since 'yesterday' is neither a duration such as 90m, 24h or 7d, or an ISO 8601 time"),
        ("24 hours", "since '24 hours' is neither"),
        ("-5m", "since '-5m' is neither"),
        ("1h30m", "since '1h30m' is neither"),
        ("0d", "since '0d' is an empty window: give more than zero"),
        ("2026-12-01T18:00:00Z", "since '2026-12-01T18:00:00Z' is not in the past (it is now 2026-12-01T18:00:00Z)"),
        ("367d", "since '367d' reaches back more than 366 days, the most a report covers"),
        ("2025-01-01", "since '2025-01-01' reaches back more than 366 days"),
        ("99999999999999d", "since '99999999999999d' reaches back more than 366 days"),
    ],
)
def test_a_bad_since_says_what_was_wrong(text: str, message: str) -> None:
    with pytest.raises(BadWindow) as refused:
        parse_since(text, now=NOW)
    assert str(refused.value).startswith(message)
