"""Cyclic garbage-collector settings for a long-running engine process.

An engine keeps many long-lived objects (run states, task views, pydantic values, client buffers). With
CPython's default thresholds the collector rescans them every few hundred allocations, which in a
10,000-item loop cost more than deciding itself (about 270 us per task against 130 us with the settings
below, decider alone). The engine's own state holds no reference cycles that need prompt collection, so
collections are made rarer, and everything alive once the stack is up is moved out of their reach.
"""

from __future__ import annotations

import gc

ENGINE_THRESHOLDS = (50_000, 20, 100)
"""Allocations before a young collection, then young collections per middle one, and middle per full."""


def tune_for_engine(thresholds: tuple[int, int, int] = ENGINE_THRESHOLDS) -> None:
    """Freeze what exists now (modules, schemas, the stack) and raise the thresholds, never lowering them.

    A collector switched off (threshold 0) stays off.
    """
    gc.freeze()
    current = gc.get_threshold()
    if current[0] > 0:
        gc.set_threshold(*(max(new, old) for new, old in zip(thresholds, current, strict=True)))
