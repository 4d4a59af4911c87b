"""`python -m bench.serve_slots [WORKERS]`: the floor, then the served loop with `serve --workers WORKERS`
(default 4) running the tasks in its own slots, no worker process; one line of figures.

Not a scenario of the suite: it answers whether serve alone, with in-process slots, takes work at the
engine's pace.
"""

from __future__ import annotations

import asyncio
import sys

from bench.scenarios import Sizes, measure_floor
from bench.user_paths import served_loop


async def main(workers: str) -> None:
    sizes = Sizes()
    floor = await measure_floor(sizes)
    result = await served_loop(sizes, floor, "--workers", workers, worker=False)
    print(
        f"floor {floor.tasks_per_s:,.0f} tasks/s | serve --workers {workers} + submit --wait of {result.tasks:,}: "
        f"{result.status} {result.seconds:.1f} s, {result.tasks_per_s:,.0f} tasks/s, {result.floor_ratio:.3f} x floor"
    )


if __name__ == "__main__":
    slots = sys.argv[1] if len(sys.argv) > 1 else "4"
    if not slots.isdigit() or int(slots) < 1:
        sys.exit(f"bench.serve_slots: WORKERS must be a whole number of at least 1, got {slots!r}")
    asyncio.run(main(slots))
