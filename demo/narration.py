"""How the demo tells its story (the narrator) and what it checked (the outcome)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


class StoryFailed(Exception):
    """A part of the story did not happen."""


class Narrator:
    """Plain lines as things happen; on a terminal, also a live status line under them."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._live = self._out.isatty()
        self._started = time.monotonic()
        self._status = ""

    def say(self, text: str) -> None:
        stamp = f"[{time.monotonic() - self._started:6.1f}s]"
        self._clear()
        print(f"{stamp} {text}", file=self._out, flush=True)
        self._draw()

    def heading(self, text: str) -> None:
        self._clear()
        print(f"\n{text}", file=self._out, flush=True)
        self._draw()

    def status(self, text: str) -> None:
        self._status = text
        self._draw()

    def done(self) -> None:
        self._status = ""
        self._clear()

    def _clear(self) -> None:
        if self._live:
            self._out.write("\r\x1b[K")

    def _draw(self) -> None:
        if self._live and self._status:
            self._out.write(f"\r\x1b[K  … {self._status}")
            self._out.flush()


@dataclass
class Outcome:
    """Every check the story made against Octopus's API, in order, with the act it belongs to."""

    checks: list[tuple[bool, str]] = field(default_factory=list)
    acts: list[tuple[int, str]] = field(default_factory=list)  # (index of its first check, the act's title)

    def begin(self, act: str) -> None:
        self.acts.append((len(self.checks), act))

    def check(self, ok: bool, text: str) -> None:
        self.checks.append((ok, text))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks)

    def summarise(self, narrator: Narrator) -> None:
        narrator.heading("Summary (checked against the Octopus API)")
        titles = dict(self.acts)
        for index, (ok, text) in enumerate(self.checks):
            if index in titles:
                narrator.say(titles[index])
            narrator.say(f"  {'ok ' if ok else 'FAILED'} {text}")
