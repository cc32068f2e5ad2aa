"""The scheduler's clock in the demo: it stands still until the story moves it (to noon in London, say), so
that a schedule fires at once instead of at its hour, and never fires, nor is missed, by the wall clock."""

from __future__ import annotations

from datetime import datetime

from workers.events import utcnow


class ScheduleClock:
    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or utcnow()

    def __call__(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now
