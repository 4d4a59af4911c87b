"""The results as a table on stdout and, on request, every number as JSON."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import orjson

from aether_es.adapters.nats.server import find_nats_server
from bench.floor import TaskFloor
from bench.scenarios import ScenarioResult


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        server = subprocess.run(
            [find_nats_server(), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except Exception:  # the version is informative only
        server = "unknown"
    try:
        import nats

        nats_py = str(getattr(nats, "__version__", "")) or _dist_version("nats-py")
    except ImportError:
        nats_py = ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": platform.python_version(),
        "nats_py": nats_py,
        "nats_server": server,
        "platform": platform.platform(),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def _num(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def table(floor: TaskFloor, results: list[ScenarioResult]) -> str:
    header = (
        "scenario",
        "tasks",
        "secs",
        "tasks/s",
        "start p50/p99 ms",
        "handoff p50/p99 ms",
        "peak RSS MB",
        "ev/task",
        "B/task",
        "x floor",
        "target",
    )
    rows = [header]
    for r in results:
        rate = f"{r.tasks_per_s:,.0f}"
        if r.name == "many runs":
            rate += f" ({r.workflows_per_s:,.0f} wf/s)"
        if r.name == "replay":
            rate = f"{r.extra.get('events_per_s', 0):,.0f} ev/s"
        if "ms_per_task" in r.extra:
            rate += f" ({r.extra['ms_per_task']:.2f} ms/task)"
        if r.name == "api runs":
            rate = f"{r.workflows_per_s:,.0f} runs/s"
        if "vs_one_engine" in r.extra:
            busy = ", ".join(f"{role} {cpu / r.seconds:.2f}" for role, cpu in r.extra["cpu_seconds"].items())
            rate += f" ({r.extra['vs_one_engine']:.2f} x 1 engine; cores busy: {busy})"
        user_path = r.extra.get("user_path", False)  # whole processes: no history or latency figures
        mark = "" if r.target_met is None else (" [met]" if r.target_met else " [missed]")
        rows.append(
            (
                r.name if r.status == "Succeeded" else f"{r.name} ({r.status})",
                f"{r.tasks:,}",
                f"{r.seconds:.1f}",
                rate,
                f"{_num(r.start_p50_ms)}/{_num(r.start_p99_ms)}",
                f"{_num(r.handoff_p50_ms)}/{_num(r.handoff_p99_ms)}",
                f"{r.peak_rss_mb:,.0f}",
                "-" if user_path else f"{r.events_per_task:.2f}",
                "-" if user_path else f"{r.bytes_per_task:,.0f}",
                f"{r.floor_ratio:.3f}",
                r.target + mark,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    floor_line = (
        f"floor: {floor.tasks_per_s:,.0f} tasks/s pipelined ({floor.tasks:,} tasks); sequential task "
        f"p50 {floor.cycle_p50_ms:.2f} ms, p99 {floor.cycle_p99_ms:.2f} ms; "
        f"assignment->worker p50 {floor.start_p50_ms:.2f} ms"
    )
    return "\n".join([floor_line, "", *lines])


def to_json(floor: TaskFloor, results: list[ScenarioResult], mode: str, total_seconds: float) -> bytes:
    document = {
        "mode": mode,
        "total_seconds": total_seconds,
        "machine": machine(),
        "floor": dataclasses.asdict(floor),
        "scenarios": {r.name: dataclasses.asdict(r) for r in results},
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
