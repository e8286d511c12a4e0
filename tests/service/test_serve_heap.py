"""``dscsa serve`` settles the heap after start-up: frozen start-up objects, rarer collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from service.commands.serve import _GC_THRESHOLDS, _settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_start_up_objects_are_frozen_and_thresholds_raised(restored_gc: None) -> None:
    app: Any = object()
    await _settle_heap(app)
    assert gc.get_threshold() == _GC_THRESHOLDS
    assert gc.get_freeze_count() > 1000
    # Cyclic garbage made afterwards is still collected.
    cycle: list[Any] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
