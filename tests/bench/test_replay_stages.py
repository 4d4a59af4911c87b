"""Smoke test of `python -m bench.replay_stages`: every stage measured, and replay --all's peak RSS reported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_replay_stages_measures_every_stage_and_the_replay_commands_memory() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.replay_stages", "--events", "808", "--rounds", "1", "--rss"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    stages, replay = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"floor [\d.]+  read [\d.]+  read\+decode [\d.]+  replay [\d.]+ us/event", stages)
    assert "replayed 808 events of 2 runs" in replay
    assert re.search(r"peak RSS [1-9]\d* MB$", replay)
