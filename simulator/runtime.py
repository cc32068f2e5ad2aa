"""One simulator instance: its store (replaced on reset), faults, and the two background loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import httpx

from simulator.accounts import add_api_key
from simulator.delivery import DeliveryLog, deliver_pass
from simulator.faults import FaultRules
from simulator.permissions import ADMIN_TEAM_ID
from simulator.seed import build_store
from simulator.store import ClockSettings, Doc, Store
from simulator.task_clock import advance
from simulator.timeutil import utc_now

IDLE_WAIT = 1.0


class Simulator:
    def __init__(
        self,
        *,
        seed: str,
        api_keys: Sequence[str],
        delivery_interval: float,
        settings: ClockSettings,
        public_url: str | None,
    ) -> None:
        self.seed = seed
        self.extra_api_keys = list(api_keys)
        self.delivery_interval = delivery_interval
        self.initial_settings = settings
        self.public_url = public_url
        self.faults = FaultRules()
        self.delivery_log = DeliveryLog()
        self.task_wake = asyncio.Event()
        self.event_wake = asyncio.Event()
        self.delivery_lock = asyncio.Lock()
        self.store = self._build(seed)
        self._loops: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    def _build(self, seed: str) -> Store:
        store = build_store(seed, ClockSettings(**vars(self.initial_settings)))
        admin_id = store.teams[ADMIN_TEAM_ID]["MemberUserIds"][0]
        for key in self.extra_api_keys:
            add_api_key(store, admin_id, "Added on the command line", key)
        store.on_task_change = self.task_wake.set
        store.on_event = self.event_wake.set
        return store

    def get_store(self) -> Store:
        return self.store

    def reset(self, seed: str | None = None) -> None:
        self.seed = seed or self.seed
        self.faults.rules.clear()
        self.delivery_log.attempts.clear()
        self.store = self._build(self.seed)
        self.task_wake.set()

    def user(self, user_id: str) -> Doc:
        return self.store.users[user_id]

    async def start(self) -> None:
        self._client = httpx.AsyncClient()
        self._loops = [asyncio.create_task(self._clock_loop()), asyncio.create_task(self._delivery_loop())]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _clock_loop(self) -> None:
        while True:
            self.task_wake.clear()
            due = advance(self.store)
            timeout = IDLE_WAIT if due is None else max(0.0, (due - utc_now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.task_wake.wait(), timeout)

    async def _delivery_loop(self) -> None:
        while True:
            if self.delivery_interval > 0:
                await asyncio.sleep(self.delivery_interval)
            else:
                await self.event_wake.wait()
                self.event_wake.clear()
            await self.deliver_now()

    async def deliver_now(self) -> list[Doc]:
        async with self.delivery_lock:
            client = self._client or httpx.AsyncClient()
            try:
                return await deliver_pass(self.store, client, self.public_url, self.delivery_log)
            finally:
                if client is not self._client:
                    await client.aclose()
