"""The Octopus REST API over httpx: authentication, timeouts, retries, paging and errors.

Errors, split by what a caller does about them (see `workers.errors`):

    OctopusUnavailable (TransientError)   connection failed, timed out, or 429 / 500 / 502 / 503 / 504
    OctopusRequestFailed (PermanentError) 400, 401, 403, 404 and other answers retrying cannot change
        ├── OctopusBadRequest             400: Octopus refused the request; ErrorMessage and Errors say why
        ├── OctopusForbidden              401 / 403: the API key or the service account's permissions
        └── OctopusNotFound               404: the document does not exist (or is not visible to the key)

Every error carries the method and path of the request, never the API key (it travels in a header).

Reads are retried in place with exponential backoff and jitter, bounded in count and in time. Writes
(POST, PUT) are retried in place only where Octopus surely did not act: the connection was never made,
or it answered 429. Otherwise the error goes up, and the job is retried later by handlers written to
find what an earlier attempt already did.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from workers.errors import PermanentError, TransientError

API_KEY_HEADER = "X-Octopus-ApiKey"
# 500 is here too: a server error usually passes, and a write that may have been done is found again
# by the caller (see workers.redeploy) rather than repeated blindly.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD"})
PAGE_SIZE = 100

Params = Mapping[str, str | int | bool | None]


class OctopusUnavailable(TransientError):
    def __init__(
        self, method: str, path: str, why: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{method} {path}: Octopus is unavailable ({why}); will retry")
        self.method = method
        self.path = path
        self.status = status
        self.retry_after = retry_after


class OctopusRequestFailed(PermanentError):
    def __init__(self, method: str, path: str, status: int, error_message: str, errors: list[str]) -> None:
        detail = error_message + (f" ({'; '.join(errors)})" if errors else "")
        super().__init__(f"{method} {path}: Octopus answered {status}: {detail}. {self.advice}")
        self.method = method
        self.path = path
        self.status = status
        self.error_message = error_message
        self.errors = errors

    advice = "Retrying will not help."


class OctopusBadRequest(OctopusRequestFailed):
    advice = "Octopus refused the request as it stands."


class OctopusForbidden(OctopusRequestFailed):
    advice = (
        "Check CONDUCTOR_OCTOPUS_API_KEY and that its service account's team has the Deployment Creator, "
        "Project Viewer and Environment Viewer roles (and is responsible for the manual interventions)."
    )


class OctopusNotFound(OctopusRequestFailed):
    advice = "Check the names in the rules file and that the API key can see this space."


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    # Well inside a job's timeout: past this the job fails and is retried later, from where it stopped.
    max_elapsed: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter on an exponential ceiling; a server's Retry-After is a floor."""
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        chosen = random.uniform(0, ceiling)
        if retry_after is not None:
            chosen = max(chosen, min(retry_after, self.max_delay * 4))
        return chosen


class OctopusClient:
    """Talks to one Octopus server with one API key."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.calls: Counter[str] = Counter()
        # Told the path of every 404, so that a cache of Octopus's documents drops what it contradicts.
        self.not_found_listeners: list[Callable[[str], object]] = []
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={API_KEY_HEADER: api_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OctopusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def items(self, path: str, params: Params | None = None, *, limit: int | None = None) -> Iterator[Any]:
        """Every item of a paged collection, page after page (`skip`/`take`), up to `limit`."""
        skip = 0
        yielded = 0
        while True:
            page = self.get(path, {**(params or {}), "skip": skip, "take": PAGE_SIZE})
            for item in page["Items"]:
                yield item
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            skip += len(page["Items"])
            if not page["Items"] or skip >= page["TotalResults"]:
                return

    def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        query = {key: _param(value) for key, value in (params or {}).items() if value is not None}
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._once(method, path, query, json)
            except OctopusUnavailable as unavailable:
                attempt += 1
                delay = self.retry.delay(attempt, unavailable.retry_after)
                out_of_time = time.monotonic() - started + delay > self.retry.max_elapsed
                if attempt >= self.retry.attempts or out_of_time or not _may_retry(method, unavailable):
                    raise
                self._sleep(delay)

    def _once(self, method: str, path: str, query: dict[str, str], json: Any) -> Any:
        self.calls[f"{method} {route_name(path)}"] += 1
        try:
            response = self._http.request(method, path, params=query, json=json)
        except httpx.ConnectError as error:
            raise _NotConnected(method, path, f"cannot connect: {type(error).__name__}") from None
        except httpx.TimeoutException as error:
            if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise _NotConnected(method, path, "connect timed out") from None
            raise OctopusUnavailable(method, path, f"{type(error).__name__}") from None
        except httpx.TransportError as error:
            raise OctopusUnavailable(method, path, f"{type(error).__name__}") from None
        if response.status_code in RETRYABLE_STATUSES:
            status = response.status_code
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise OctopusUnavailable(method, path, f"HTTP {status}", status=status, retry_after=retry_after)
        if response.status_code >= 400:
            failed = _request_failed(method, path, response)
            if isinstance(failed, OctopusNotFound):
                for listener in self.not_found_listeners:
                    listener(path)
            raise failed
        if not response.content:
            return None
        return response.json()


class _NotConnected(OctopusUnavailable):
    """The request never reached Octopus, so even a write may be sent again."""


def _may_retry(method: str, unavailable: OctopusUnavailable) -> bool:
    if method in SAFE_METHODS or isinstance(unavailable, _NotConnected):
        return True
    # 429 means Octopus throttled the request before acting on it.
    return unavailable.status == 429


def _request_failed(method: str, path: str, response: httpx.Response) -> OctopusRequestFailed:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error_message = str(body.get("ErrorMessage") or response.reason_phrase or "no error message")
    errors = [str(item) for item in body.get("Errors") or []]
    kind: type[OctopusRequestFailed] = {
        400: OctopusBadRequest,
        401: OctopusForbidden,
        403: OctopusForbidden,
        404: OctopusNotFound,
    }.get(response.status_code, OctopusRequestFailed)
    return kind(method, path, response.status_code, error_message, errors)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _param(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def route_name(path: str) -> str:
    """`/api/Spaces-1/machines/Machines-42` → `/api/{space}/machines/{id}`: a bounded name for counting."""
    parts = []
    for part in path.split("/"):
        if part.startswith("Spaces-"):
            parts.append("{space}")
        elif "-" in part and part.rsplit("-", 1)[1].isdigit():
            parts.append("{id}")
        else:
            parts.append(part)
    return "/".join(parts)
