"""Before a worker takes jobs: is the Octopus configuration usable? (`GET /api/users/me`)

A wrong API key, a missing URL or a URL that is not an Octopus server would make every job fail, so they
stop start-up with a line that names the variable to fix. An Octopus that is only down (no connection,
a timeout, 5xx) is waited for, with capped exponential backoff, saying so once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workers.octopus import (
    OctopusClient,
    OctopusForbidden,
    OctopusNotFound,
    OctopusRequestFailed,
    OctopusUnavailable,
)

CURRENT_USER = "/api/users/me"
FIRST_DELAY = 1.0
MAX_DELAY = 30.0


class OctopusMisconfigured(Exception):
    """The Octopus settings cannot work; the message names the variable and the fix."""


def octopus_settings_problem(*, url: str | None, has_api_key: bool, needs_octopus: bool) -> str | None:
    """What is missing for a worker, or None. Without rules and without Octopus a worker still records
    deployment outcomes, so that case is no problem."""
    if url is None and (has_api_key or needs_octopus):
        return "set CONDUCTOR_OCTOPUS_URL to the Octopus server's base URL, e.g. https://octopus.example.com"
    if url is not None and not has_api_key:
        return "set CONDUCTOR_OCTOPUS_API_KEY to the API key of the conductor's service account"
    return None


def wait_for_octopus(
    client: OctopusClient,
    *,
    log: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The user the API key belongs to, once Octopus answers. Raises OctopusMisconfigured.

    `client` should not retry on its own (RetryPolicy(attempts=1)): the waiting happens here."""
    url = client.base_url
    delay = FIRST_DELAY
    waited = 0.0
    while True:
        try:
            user = client.get(CURRENT_USER)
        except OctopusUnavailable as error:
            if waited == 0.0:
                log.warning("Octopus unavailable; waiting for it", octopus=url, error=str(error))
            sleep(delay)
            waited += delay
            delay = min(delay * 2, MAX_DELAY)
            continue
        except OctopusForbidden as error:
            raise OctopusMisconfigured(
                f"the Octopus server at {url} refused CONDUCTOR_OCTOPUS_API_KEY (HTTP {error.status}): "
                "set it to a valid API key of the conductor's service account"
            ) from None
        except OctopusNotFound:
            raise OctopusMisconfigured(
                f"{url} answered 404 for {CURRENT_USER}: set CONDUCTOR_OCTOPUS_URL to the Octopus server's base URL"
            ) from None
        except OctopusRequestFailed as error:
            raise OctopusMisconfigured(
                f"{url} answered {error.status} for {CURRENT_USER}: check CONDUCTOR_OCTOPUS_URL and "
                "CONDUCTOR_OCTOPUS_API_KEY"
            ) from None
        except ValueError:  # an answer that is not JSON: a web server, but not Octopus's API
            raise OctopusMisconfigured(
                f"{url} does not answer like Octopus's API: set CONDUCTOR_OCTOPUS_URL to the Octopus server's "
                "base URL (the one whose /api lists the server's links)"
            ) from None
        if not isinstance(user, dict) or "Id" not in user:
            raise OctopusMisconfigured(
                f"{url} does not answer like Octopus's API: set CONDUCTOR_OCTOPUS_URL to the Octopus server's base URL"
            )
        if waited:
            log.info("Octopus is back", octopus=url, waited_seconds=round(waited, 1))
        return user
