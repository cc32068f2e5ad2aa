"""`conductor serve` tunes the garbage collector once the app is built (see `tune_garbage_collector`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service.app import YOUNG_GENERATION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    _, middle, oldest = gc.get_threshold()
    built_at_start_up = [["settings"]]
    assert any(tracked is built_at_start_up for tracked in gc.get_objects())

    tune_garbage_collector()

    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, middle, oldest)
    # Frozen: in the permanent generation, which no collection scans.
    assert not any(tracked is built_at_start_up for tracked in gc.get_objects())
    assert gc.get_freeze_count() > 0
