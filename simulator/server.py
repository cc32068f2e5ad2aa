"""Run the simulator under uvicorn (blocking); `conductor simulator` calls this."""

from __future__ import annotations

from collections.abc import Sequence

import uvicorn

from simulator.app import create_app


def serve(*, host: str, port: int, seed: str, api_keys: Sequence[str], delivery_interval: float) -> None:
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    app = create_app(
        seed=seed, api_keys=api_keys, delivery_interval=delivery_interval, public_url=f"http://{public_host}:{port}"
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
