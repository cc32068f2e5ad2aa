"""What a worker process holds for its jobs: connections and configuration, installed once at start.

RQ calls job functions by name with JSON arguments only, so the thin job entry point takes its
collaborators from here and passes them on explicitly; nothing deeper reads this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from workers.keys import RedisKeys


@dataclass(frozen=True)
class WorkerContext:
    redis: redis.Redis
    keys: RedisKeys


_installed: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    global _installed
    _installed = context


def current() -> WorkerContext:
    if _installed is None:
        raise RuntimeError("no WorkerContext installed: start jobs through `conductor worker`")
    return _installed
