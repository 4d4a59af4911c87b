"""Smoke test of `aether-es bench`: it runs end to end and writes every scenario's numbers (no timing asserts)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ENGINE = ("fan-out", "wide DAG", "chain", "many runs", "scale", "replay")
USER_PATHS = ("run loop", "run chain", "served loop", "api runs")
ENGINE_COUNTS = ("1 engine", "2 engines", "3 engines")
SCENARIOS = ENGINE + USER_PATHS + ENGINE_COUNTS
REQUIRED = (
    "tasks",
    "seconds",
    "tasks_per_s",
    "peak_rss_mb",
    "rss_growth_kb_per_task",
    "events",
    "bytes",
    "events_per_task",
    "bytes_per_task",
    "floor_ratio",
)
OPTIONAL = ("start_p50_ms", "start_p99_ms", "handoff_p50_ms", "handoff_p99_ms", "cycle_p50_ms", "cycle_p99_ms")


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_bench_runs_and_reports_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # `--quick` takes ~30 s on the 2-core dev VM, user paths included (a hidden `--tiny` exists for slower machines).
    proc = subprocess.run(
        [sys.executable, "-m", "aether_es.cli.main", "bench", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert _numeric(data["floor"]["tasks_per_s"])
    assert _numeric(data["floor"]["cycle_p50_ms"])
    assert set(data["scenarios"]) == set(SCENARIOS)
    for name, result in data["scenarios"].items():
        assert result["status"] == "Succeeded", (name, result["status"])
        for key in REQUIRED:
            assert _numeric(result[key]), (name, key, result[key])
        for key in OPTIONAL:
            assert result[key] is None or _numeric(result[key]), (name, key, result[key])
        assert result["tasks"] > 0 and result["seconds"] > 0, name
    for name in ENGINE:
        assert data["scenarios"][name]["events"] > 0, name
    for name in ("fan-out", "wide DAG", "chain", "many runs", "scale"):
        assert _numeric(data["scenarios"][name]["start_p50_ms"]), name
    assert _numeric(data["scenarios"]["chain"]["extra"]["median_overhead_ms"])
    for name in ENGINE_COUNTS:
        extra = data["scenarios"][name]["extra"]
        assert _numeric(extra["vs_one_engine"]) and extra["vs_one_engine"] > 0, name
        assert all(_numeric(seconds) for seconds in extra["cpu_seconds"].values()), name
    assert _numeric(data["scenarios"]["replay"]["extra"]["events_per_s"])
    assert _numeric(data["scenarios"]["run chain"]["extra"]["ms_per_task"])
    for name in USER_PATHS:
        assert data["scenarios"][name]["extra"]["user_path"] is True, name
    for key in SCENARIOS:
        assert key in proc.stdout
