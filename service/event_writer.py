"""Group commit of webhook events: many requests' enqueues in one Redis round trip.

While one batch is on its way to Redis, requests that arrive wait and go together in the next. A lone
request is written at once; under load batches grow by themselves. Every request still gets its answer
only after its own event is stored (and, with replica acks required, confirmed by that many replicas).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import redis.asyncio

from workers.event_queue import EventQueue, StoreResult, Submission

MAX_BATCH = 500


@dataclass
class _Pending:
    submission: Submission
    answer: asyncio.Future[StoreResult]


class EventWriter:
    def __init__(self, *, queue: EventQueue, connection: redis.asyncio.Redis) -> None:
        self._queue = queue
        self._connection = connection
        self._script = connection.register_script(queue.script_text)
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, submission: Submission) -> StoreResult:
        """Store one submission; raises the Redis error if its batch could not be written."""
        answer: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(submission, answer))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_while_pending())
        return await answer

    async def _flush_while_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._flush(batch)
        finally:
            self._flusher = None

    async def ready(self) -> None:
        """Raise unless an (empty) store succeeds now: Redis answers, takes writes, and replicates them as
        required. What `/readyz` asks."""
        call = self._queue.prepare([])
        await self._run(call.keys, call.args)

    async def _run(self, keys: list[str], args: list[bytes | str | int]) -> list[int]:
        if not self._queue.replica_acks:
            flags: list[int] = await self._script(keys=keys, args=args)
            return flags
        # WAIT counts the writes of its own connection: the script and WAIT go down one pipeline.
        async with self._connection.pipeline(transaction=False) as pipeline:
            await self._script(keys=keys, args=args, client=pipeline)
            pipeline.execute_command(*self._queue.wait_args())
            flags, confirmed = await pipeline.execute()
        self._queue.check_replicated(int(confirmed))
        return flags

    async def _flush(self, batch: list[_Pending]) -> None:
        submissions = [item.submission for item in batch]
        try:
            call = self._queue.prepare(submissions)
            flags = await self._run(call.keys, call.args)
            results = self._queue.results(submissions, flags)
        except Exception as error:  # the whole batch shares the fate of its one round trip
            for item in batch:
                if not item.answer.done():
                    item.answer.set_exception(error)
            return
        for item, result in zip(batch, results, strict=True):
            if not item.answer.done():
                item.answer.set_result(result)
