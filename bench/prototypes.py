"""A prototype of the intake without its store, applied by monkeypatching, to measure what the store costs.

NOT product code and not used by the product: `bench.intake_variants` starts an intake process with this
patch beside the intake as it is. The patch fails loudly if the product code it replaces has changed shape.

- `no_store`: the writer answers "queued" without touching Redis: the ceiling of everything but the store.
"""

from __future__ import annotations

from typing import Any

from service import event_writer
from workers.event_queue import StoreResult, Submission


def apply_no_store() -> None:
    if not hasattr(event_writer.EventWriter, "write"):
        raise RuntimeError("the product's EventWriter changed; the no_store prototype needs updating")

    async def write(self: Any, submission: Submission) -> StoreResult:
        return StoreResult("queued", self._queue.keys.job_id(submission.event.event.Id))

    event_writer.EventWriter.write = write  # type: ignore[method-assign]


PATCHES = {"no-store": apply_no_store}
