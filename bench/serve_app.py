"""One uvicorn server process for the benchmarks: the intake, a bare Starlette endpoint, or the simulator.

The intake and the bare endpoint are started by the same `uvicorn.run` call with the same options (one
process, `loop`/`http` "auto" unless given, no access log, log level warning: what `conductor serve` uses),
so that the only difference between them is the handler. The intake is built as `conductor serve` builds
it: settings from CONDUCTOR_* variables, the same logging set-up, `service.app.create_app`.

    python -m bench.serve_app intake --port 8081
    python -m bench.serve_app bare --port 8082
    python -m bench.serve_app simulator --port 8065 --delivery-interval 0
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.harness import HOST


def bare_app() -> Starlette:
    """The framework's floor: read the body, answer 202 with a small JSON body like the intake's."""

    async def webhook(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "queued"}, status_code=202)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhooks/octopus", webhook, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])]
    )


def intake_app() -> Starlette:
    """`conductor serve`'s application, configured the way `conductor serve` configures it."""
    from service import logs
    from service.app import create_app, tune_garbage_collector
    from service.settings import Settings

    settings = Settings()
    secrets = [secret.decode() for secret in settings.webhook_secrets()]
    logs.configure(level=settings.log_level, fmt=settings.log_format, secrets=secrets)
    app = create_app(settings)
    tune_garbage_collector()
    return app


def simulator_app(args: argparse.Namespace) -> Starlette:
    from simulator.app import create_app

    return create_app(
        seed="sample",
        delivery_interval=args.delivery_interval,
        queue_delay=args.queue_delay,
        step_duration=args.step_duration,
        health_check_delay=args.health_check_delay,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=["intake", "bare", "simulator"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (default auto)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (default auto)")
    parser.add_argument("--delivery-interval", type=float, default=0.0, help="simulator: seconds between passes")
    parser.add_argument("--queue-delay", type=float, default=0.0, help="simulator: seconds a task stays Queued")
    parser.add_argument("--step-duration", type=float, default=0.05, help="simulator: seconds per step")
    parser.add_argument("--health-check-delay", type=float, default=0.5, help="simulator: first health check")
    args = parser.parse_args(argv)
    app: Any
    if args.app == "intake":
        app = intake_app()
    elif args.app == "bare":
        app = bare_app()
    else:
        app = simulator_app(args)
    uvicorn.run(
        app,
        host=HOST,
        port=args.port,
        loop=args.loop,
        http=args.http,
        workers=None,
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
