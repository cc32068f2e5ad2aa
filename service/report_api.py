"""`GET /reports/deployments?since=24h&format=json`: the deployment report over HTTP, behind the read token.

`since` as for `conductor report` (default 24h), `format` json (the default), csv or markdown. A bad value is
a 400 saying what was wrong; a report that could not read Octopus is still 200, with `complete: false` and
the reason in its notes (and in the `X-Report-Complete: false` header for CSV and Markdown).
"""

from __future__ import annotations

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.auth import Endpoint
from service.report_formats import MEDIA_TYPES
from service.report_request import BadReportRequest, report_sources, requested_report
from service.settings import Settings
from workers.report_window import DEFAULT_SINCE
from workers.rules import Rules


def deployment_report_endpoint(settings: Settings, connection: redis.Redis, rules: Rules | None) -> Endpoint:
    """The handler for `GET /reports/deployments` (to be wrapped in the read token's gate)."""
    # One client and one name cache for the intake's life: the names are cached between reports.
    sources = report_sources(settings, connection, rules)

    async def deployment_report(request: Request) -> Response:
        since = request.query_params.get("since", DEFAULT_SINCE)
        fmt = request.query_params.get("format", "json")
        try:
            report, text = await run_in_threadpool(requested_report, sources, since=since, fmt=fmt)
        except BadReportRequest as error:
            return JSONResponse({"error": "bad_request", "message": str(error)}, status_code=400)
        complete = "true" if report.complete else "false"
        return Response(text, media_type=MEDIA_TYPES[fmt], headers={"X-Report-Complete": complete})

    return deployment_report
