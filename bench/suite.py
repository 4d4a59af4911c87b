"""Every scenario in order, after the floor they are measured against: the engine's, then the user's paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench import floor as fl
from bench import user_paths as up
from bench.engines import engines
from bench.scenarios import ScenarioResult, Sizes, chain, fanout, many_runs, measure_floor, replay, scale, wide_dag

SCENARIOS = (
    "fan-out",
    "wide DAG",
    "chain",
    "many runs",
    "scale",
    "replay",
    "run loop",
    "run chain",
    "served loop",
    "api runs",
    "engines",
)


async def run_all(
    sizes: Sizes, only: set[str] | None = None, progress: Callable[[str], None] | None = None
) -> tuple[fl.TaskFloor, list[ScenarioResult]]:
    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    say("floor ...")
    floor = await measure_floor(sizes)
    say(f"floor: {floor.tasks_per_s:,.0f} tasks/s, sequential cycle p50 {floor.cycle_p50_ms:.2f} ms")
    results: list[ScenarioResult] = []
    reference: ScenarioResult | None = None
    steps: list[tuple[str, Callable[[], Awaitable[ScenarioResult | list[ScenarioResult]]]]] = [
        ("fan-out", lambda: fanout(sizes, floor)),
        ("wide DAG", lambda: wide_dag(sizes, floor)),
        ("chain", lambda: chain(sizes, floor)),
        ("many runs", lambda: many_runs(sizes, floor)),
        ("scale", lambda: scale(sizes, floor, reference)),
        ("replay", lambda: replay(sizes)),
        ("run loop", lambda: up.run_loop(sizes, floor)),
        ("run chain", lambda: up.run_chain(sizes, floor)),
        ("served loop", lambda: up.served_loop(sizes, floor)),
        ("api runs", lambda: up.small_runs(sizes, floor)),
        ("engines", lambda: engines(sizes, floor)),
    ]
    for name, step in steps:
        if only and name not in only:
            continue
        say(f"{name} ...")
        outcome = await step()
        for result in outcome if isinstance(outcome, list) else [outcome]:
            if name == "fan-out":
                reference = result
            say(f"{result.name}: {result.seconds:.1f}s, {result.tasks_per_s:,.0f} tasks/s, {result.status}")
            results.append(result)
    return floor, results
