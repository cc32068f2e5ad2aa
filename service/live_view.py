"""The live view: a read-only status page on the intake, server-rendered with Jinja2 (autoescape on).

`GET /` is a page with no data in it: it asks for a read token, keeps it in the tab's sessionStorage and
fetches `GET /live/status` (the plans as an HTML fragment, behind the read token like the rest of the read
API) with it as a Bearer header every few seconds, so the token never travels in a URL, a cookie or a log
line. The page's own script and style are files of the intake (`/live/view.js`, `/live/view.css`); its
Content-Security-Policy allows nothing else, so a name that slipped past escaping still could not run.
"""

from __future__ import annotations

from importlib import resources

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from service.auth import TokenGate
from service.live_status import plan_cards, plans_to_show
from workers.approval_records import ApprovalStore
from workers.events import utcnow
from workers.plans import PlanStore
from workers.stuck_deployments import StuckStore

STATUS_PATH = "/live/status"
SCRIPT_PATH = "/live/view.js"
STYLE_PATH = "/live/view.css"
# Enough relay records for the plans on the page: a plan has a few components, each a few interventions.
RELAYS_READ = 300
# The newest stuck deployments shown under the plans.
STUCK_SHOWN = 10
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("service", "templates"),
        autoescape=True,  # every template is HTML: names, reasons and notes come from Octopus and people
        undefined=jinja2.StrictUndefined,
    )


class LiveView:
    """The page, its fragment and its two files; `finished_shown` finished plans under those in progress."""

    def __init__(
        self,
        *,
        plans: PlanStore,
        approvals: ApprovalStore,
        refresh_seconds: float = 2.0,
        finished_shown: int = 20,
        stuck: StuckStore | None = None,
    ) -> None:
        self._plans = plans
        self._stuck = stuck
        self._approvals = approvals
        self._refresh_ms = int(refresh_seconds * 1000)
        self._finished_shown = finished_shown
        self._templates = templates()
        folder = resources.files("service").joinpath("templates")
        self._script = folder.joinpath("live_view.js").read_text(encoding="utf-8")
        self._style = folder.joinpath("live_view.css").read_text(encoding="utf-8")

    def routes(self, reading: TokenGate) -> list[Route]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route(STATUS_PATH, reading.protect(self.status), methods=["GET"]),
            Route(SCRIPT_PATH, self.script, methods=["GET"]),
            Route(STYLE_PATH, self.style, methods=["GET"]),
        ]

    async def page(self, request: Request) -> Response:
        """The page; `?refresh=N` refreshes it every N seconds (1 to 60) instead of the default."""
        html = self._templates.get_template("live_view.html").render(
            status_url=STATUS_PATH,
            script_url=SCRIPT_PATH,
            style_url=STYLE_PATH,
            refresh_ms=self._refresh(request.query_params.get("refresh")),
        )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    def _refresh(self, asked: str | None) -> int:
        try:
            return int(min(max(float(asked or ""), 1.0), 60.0) * 1000)
        except ValueError:
            return self._refresh_ms

    async def status(self, request: Request) -> Response:
        html = await run_in_threadpool(self.render_status)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    def render_status(self) -> str:
        """The fragment the page shows: the plans as they are in Redis now."""
        shown = plans_to_show(
            self._plans.running(), self._plans.recent(self._finished_shown * 2), finished_limit=self._finished_shown
        )
        now = utcnow()
        cards = plan_cards(shown, self._approvals.recent(RELAYS_READ), now=now)
        stuck = self._stuck.recent(STUCK_SHOWN) if self._stuck is not None else []
        return self._templates.get_template("live_status.html").render(cards=cards, now=now, stuck=stuck)

    async def script(self, request: Request) -> Response:
        return Response(self._script, media_type="text/javascript", headers=SECURITY_HEADERS)

    async def style(self, request: Request) -> Response:
        return Response(self._style, media_type="text/css", headers=SECURITY_HEADERS)
