"""The intake's HTTP application: routes, their collaborators, and JSON errors everywhere."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

import redis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.auth import TokenGate, WebhookAuth
from service.event_writer import EventWriter
from service.intake import WebhookIntake
from service.live_view import LiveView
from service.metrics import IntakeMetrics, QueueCollector
from service.promotions_api import promotions_endpoint
from service.report_api import deployment_report_endpoint
from service.settings import Settings
from service.stuck_metrics import StuckCollector
from workers.approval_records import ApprovalStore
from workers.dispatch import handled_categories
from workers.plans import PlanStore
from workers.redis_client import connect, connect_async
from workers.stuck_deployments import StuckStore

log = structlog.get_logger("conductor.service")


def create_app(settings: Settings) -> Starlette:
    """Build the intake. Raises ValueError when the settings cannot run safely."""
    auth = WebhookAuth(
        header=settings.webhook_header,
        secrets=settings.webhook_secrets(),
        allow_unauthenticated=settings.allow_unauthenticated,
    )
    # Read endpoints (and every later one) behind the read token; /healthz and /readyz stay open.
    reading = TokenGate(tokens=settings.read_token_values(), variable="CONDUCTOR_READ_TOKENS", access="read")
    writing = TokenGate(tokens=settings.write_token_values(), variable="CONDUCTOR_WRITE_TOKENS", access="write")
    keys = settings.keys
    rules = settings.load_rules()
    sync_redis = connect(settings.redis_url, timeout=settings.redis_timeout_seconds)
    async_redis = connect_async(settings.redis_url, timeout=settings.redis_timeout_seconds)
    queue = settings.event_queue(sync_redis)
    registry = CollectorRegistry()
    metrics = IntakeMetrics(registry)
    registry.register(QueueCollector(connection=sync_redis, queue_name=keys.queue_name))
    registry.register(StuckCollector(connection=sync_redis, prefix=keys.prefix))
    writer = EventWriter(queue=queue, connection=async_redis)
    intake = WebhookIntake(
        auth=auth,
        writer=writer,
        handled_categories=handled_categories(rules),
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
    )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            await writer.ready()  # an empty store: Redis answers, takes writes, replicates them as required
        except (redis.RedisError, OSError, TimeoutError):
            return JSONResponse({"status": "unavailable", "redis": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ready", "redis": "ok"})

    plans = PlanStore(sync_redis, keys.prefix)

    async def list_plans(request: Request) -> JSONResponse:
        limit = _limit(request.query_params.get("limit"))
        found = await run_in_threadpool(plans.recent, limit)
        return JSONResponse({"plans": [plan.model_dump(mode="json") for plan in found]})

    async def get_plan(request: Request) -> JSONResponse:
        plan_id = request.path_params["plan_id"]
        plan = await run_in_threadpool(plans.load, plan_id)
        if plan is None:
            return JSONResponse({"error": "not_found", "message": f"no plan {plan_id!r}"}, status_code=404)
        return JSONResponse(plan.model_dump(mode="json"))

    async def list_promotions(request: Request) -> JSONResponse:
        limit = _limit(request.query_params.get("limit"))
        found = await run_in_threadpool(lambda: plans.recent(limit, promotions_only=True))
        return JSONResponse({"promotions": [plan.model_dump(mode="json") for plan in found]})

    async def get_promotion(request: Request) -> JSONResponse:
        plan_id = request.path_params["plan_id"]
        plan = await run_in_threadpool(plans.load, plan_id)
        if plan is None or plan.kind != "promotion":
            return JSONResponse({"error": "not_found", "message": f"no promotion {plan_id!r}"}, status_code=404)
        return JSONResponse(plan.model_dump(mode="json"))

    approvals = ApprovalStore(sync_redis, keys.prefix)

    async def list_approvals(request: Request) -> JSONResponse:
        limit = _limit(request.query_params.get("limit"))
        found = await run_in_threadpool(approvals.recent, limit)
        return JSONResponse({"approvals": [record.model_dump(mode="json", exclude={"timer"}) for record in found]})

    live_view = LiveView(plans=plans, approvals=approvals, stuck=StuckStore(sync_redis, keys.prefix))

    async def metrics_endpoint(request: Request) -> Response:
        text = await run_in_threadpool(generate_latest, registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not auth.enabled:
            log.warning(
                "webhook authentication is OFF: any sender can queue events",
                setting="CONDUCTOR_ALLOW_UNAUTHENTICATED",
            )
        log.info(
            "intake started",
            queue=keys.queue_name,
            header=settings.webhook_header,
            read_api="on" if settings.read_tokens else "off (no CONDUCTOR_READ_TOKENS)",
            metrics="open" if settings.metrics_open else "read token",
        )
        try:
            yield
        finally:
            await async_redis.aclose()
            sync_redis.close()

    return Starlette(
        routes=[
            Route("/webhooks/octopus", intake.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(
                "/metrics",
                metrics_endpoint if settings.metrics_open else reading.protect(metrics_endpoint),
                methods=["GET"],
            ),
            Route("/plans", reading.protect(list_plans), methods=["GET"]),
            Route("/plans/{plan_id}", reading.protect(get_plan), methods=["GET"]),
            Route("/promotions", reading.protect(list_promotions), methods=["GET"]),
            Route("/promotions", writing.protect(promotions_endpoint(settings, sync_redis, rules)), methods=["POST"]),
            Route("/promotions/{plan_id}", reading.protect(get_promotion), methods=["GET"]),
            Route("/approvals", reading.protect(list_approvals), methods=["GET"]),
            Route(
                "/reports/deployments",
                reading.protect(deployment_report_endpoint(settings, sync_redis, rules)),
                methods=["GET"],
            ),
            *live_view.routes(reading),
        ],
        exception_handlers={HTTPException: _json_http_error},
        lifespan=lifespan,
    )


# Python's default is 700: under load a young collection every dozen requests or so, each promoting the
# objects of the requests in flight to be scanned again later.
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Tune the garbage collector for a long-running intake. Call once, after the app is built.

    Freezing moves the ~60,000 objects built at start-up (modules, settings, the app), which never become
    garbage, out of the collector's sight: full collections had rescanned them all, about 35 ms each and 6 %
    of the intake's CPU under load. A higher young-generation threshold turns ~300 collections a second
    into a few: almost everything a request allocates is freed by reference counting anyway, so what the
    collections scanned was the requests in flight. Together about 10 % of the intake's CPU
    (`bench/README.md`)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def _limit(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 50), 500))
    except ValueError:
        raise HTTPException(400, f"limit must be a whole number, not {raw!r}") from None


async def _json_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reasons = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
    body = {
        "error": reasons.get(exc.status_code, "http_error"),
        "message": f"{request.method} {request.url.path}: {exc.detail}",
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
