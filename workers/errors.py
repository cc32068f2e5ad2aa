"""The conductor's errors, split by what a caller does about them.

ConductorError
├── TransientError      retry later: Redis or Octopus briefly unreachable, 429, 502, 503, 504
└── PermanentError      retrying cannot help: bad data, 400, 401, 403, 404; a person must act
    └── UnhandledCategory   a job arrived for a category no handler is registered for
"""

from __future__ import annotations


class ConductorError(Exception):
    """Base of every error the conductor raises on purpose."""


class TransientError(ConductorError):
    """The same work may succeed if tried again later."""


class PermanentError(ConductorError):
    """The same work will fail again; the message says what to fix."""


class UnhandledCategory(PermanentError):
    def __init__(self, category: str) -> None:
        super().__init__(f"no handler is registered for event category {category!r}")
        self.category = category
