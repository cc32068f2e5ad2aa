"""The subscription's custom header, checked in constant time against every accepted secret."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence


class WebhookAuth:
    """Accepts a request whose `header` holds any of `secrets` (several at once allow rotation)."""

    def __init__(self, *, header: str, secrets: Sequence[bytes], allow_unauthenticated: bool) -> None:
        if not secrets and not allow_unauthenticated:
            raise ValueError(
                "no webhook secret configured: set CONDUCTOR_WEBHOOK_SECRET, "
                "or CONDUCTOR_ALLOW_UNAUTHENTICATED=true to accept unauthenticated webhooks"
            )
        self.header = header.lower()
        self._secrets = list(secrets)
        self.enabled = bool(secrets)

    def accepts(self, headers: Mapping[str, str]) -> bool:
        if not self.enabled:
            return True
        presented = headers.get(self.header)
        if presented is None:
            return False
        candidate = presented.encode("utf-8", "surrogateescape")
        matched = False
        # Compare against every secret so the time taken does not reveal which one matched.
        for secret in self._secrets:
            matched |= hmac.compare_digest(candidate, secret)
        return matched
