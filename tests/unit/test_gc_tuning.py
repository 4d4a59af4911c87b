"""The engine's garbage-collector settings: raised, never lowered, and a switched-off collector stays off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aether_es.runtime.gc_tuning import ENGINE_THRESHOLDS, tune_for_engine


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)
    gc.unfreeze()


def test_thresholds_are_raised_and_startup_objects_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    tune_for_engine()
    assert gc.get_threshold() == ENGINE_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_higher_thresholds_are_kept() -> None:
    gc.set_threshold(1_000_000, 10, 1_000)
    tune_for_engine()
    assert gc.get_threshold() == (1_000_000, ENGINE_THRESHOLDS[1], 1_000)


def test_a_switched_off_collector_stays_off() -> None:
    gc.set_threshold(0)
    tune_for_engine()
    assert gc.get_threshold()[0] == 0
