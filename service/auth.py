"""Who may call what: the webhook's secret header, and bearer tokens for the read and write APIs.

Each is checked in constant time against every accepted value (several at once allow rotation), on the
header's raw bytes: the ASGI server hands header values over as Latin-1 text, and a secret configured as
UTF-8 text is compared as its UTF-8 bytes, so comparing bytes on both sides is the only consistent way.
The three never open one another's doors: a read token is not a webhook secret, nor a write token.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Endpoint = Callable[[Request], Awaitable[Response]]


class WebhookAuth:
    """Accepts a request whose `header` holds any of `secrets` (several at once allow rotation)."""

    def __init__(self, *, header: str, secrets: Sequence[bytes], allow_unauthenticated: bool) -> None:
        if not secrets and not allow_unauthenticated:
            raise ValueError(
                "no webhook secret configured: set CONDUCTOR_WEBHOOK_SECRET, "
                "or CONDUCTOR_ALLOW_UNAUTHENTICATED=true to accept unauthenticated webhooks"
            )
        self.header = header.lower()
        self._name = self.header.encode("latin-1")
        self._secrets = list(secrets)
        self.enabled = bool(secrets)

    def accepts(self, headers: Headers) -> bool:
        if not self.enabled:
            return True
        presented = raw_header(headers, self._name)
        return presented is not None and matches_any(presented, self._secrets)


class TokenGate:
    """Bearer tokens (`Authorization: Bearer <token>`) for one kind of access, e.g. reading plans.

    With no token configured the gate is shut and says how to open it: an API is never open by default."""

    def __init__(self, *, tokens: Sequence[bytes], variable: str, access: str) -> None:
        self._tokens = list(tokens)
        self._variable = variable
        self._access = access

    def refusal(self, headers: Headers) -> Response | None:
        """None when the request carries an accepted token, else the answer to send."""
        if not self._tokens:
            return JSONResponse(
                {
                    "error": "forbidden",
                    "message": f"The {self._access} API is off: no token is configured. Set {self._variable} "
                    "to one or more tokens (comma-separated) and send one as 'Authorization: Bearer <token>'.",
                },
                status_code=403,
            )
        presented = raw_header(headers, b"authorization")
        scheme, _, token = (presented or b"").partition(b" ")
        if scheme.lower() == b"bearer" and token.strip() and matches_any(token.strip(), self._tokens):
            return None
        return JSONResponse(
            {
                "error": "unauthorized",
                "message": f"Missing or wrong token: send 'Authorization: Bearer <token>' with one of the "
                f"tokens in {self._variable}.",
            },
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer realm="conductor {self._access}"'},
        )

    def protect(self, endpoint: Endpoint) -> Endpoint:
        """`endpoint`, answered only for a request that carries an accepted token."""

        async def guarded(request: Request) -> Response:
            refused = self.refusal(request.headers)
            return refused if refused is not None else await endpoint(request)

        return guarded


def raw_header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case) as the bytes that arrived."""
    for key, value in headers.raw:
        if key.lower() == name:
            return value
    return None


def matches_any(presented: bytes, accepted: Sequence[bytes]) -> bool:
    matched = False
    # Compare against every value so the time taken does not reveal which one matched.
    for value in accepted:
        matched |= hmac.compare_digest(presented, value)
    return matched
