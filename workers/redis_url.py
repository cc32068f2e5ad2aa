"""A Redis URL as it may be shown: in logs, errors and start-up lines, never with its password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def without_password(url: str) -> str:
    """`redis://:secret@host:6379/0` → `redis://:***@host:6379/0`; a URL without a password is unchanged."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "(not a URL)"
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        # `user:password@`, `:password@`, or a bare `password@`: keep only a user name followed by a colon.
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        url = url.replace(netloc, f"{user}:{MASK}@{hosts}", 1)
    return _PASSWORD_PARAMETER.sub(rf"\g<1>{MASK}", url)
