"""create_app: one independent simulator per call, served by Starlette."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from simulator import control
from simulator.errors import OctopusError, handle_http_error, handle_octopus_error
from simulator.faults import FaultInjection
from simulator.gateway import ApiKeyAuth, SpaceScope
from simulator.routes import (
    build_information,
    deployments,
    events,
    infrastructure,
    interruptions,
    people,
    projects,
    releases,
    root,
    subscriptions,
    tag_sets,
    tasks,
    variables,
)
from simulator.runtime import Simulator
from simulator.store import ClockSettings


def create_app(
    *,
    seed: str = "sample",
    api_keys: Sequence[str] = (),
    delivery_interval: float = 1.0,
    queue_delay: float = 0.5,
    step_duration: float = 0.5,
    health_check_delay: float = 0.5,
    public_url: str | None = None,
) -> Starlette:
    """A fresh simulator. `public_url` becomes ServerUri in webhook payloads (null when not set, as on
    an Octopus server without a configured public URL)."""
    sim = Simulator(
        seed=seed,
        api_keys=api_keys,
        delivery_interval=delivery_interval,
        settings=ClockSettings(
            queue_delay=queue_delay, step_duration=step_duration, health_check_delay=health_check_delay
        ),
        public_url=public_url,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    api_routes = [
        *root.routes,
        *people.routes,
        *projects.routes,
        *releases.routes,
        *infrastructure.routes,
        *deployments.routes,
        *tasks.routes,
        *interruptions.routes,
        *events.routes,
        *subscriptions.routes,
        *tag_sets.routes,
        *variables.routes,
        *build_information.routes,
        root.space_root_route,
    ]
    app = Starlette(
        routes=[*control.routes, *api_routes],
        middleware=[
            Middleware(FaultInjection, faults=sim.faults),
            Middleware(SpaceScope, store=sim.get_store),
            Middleware(ApiKeyAuth, store=sim.get_store),
        ],
        exception_handlers={OctopusError: handle_octopus_error, HTTPException: handle_http_error},
        lifespan=lifespan,
    )
    app.state.simulator = sim
    return app
