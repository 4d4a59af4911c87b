"""Following a run costs O(events): `run`, `watch`, `submit --wait` and the Client read its history once.

The guard counts work, never time: a follower that rebuilt the run's view (or fetched it) per change would
build task records in proportion to tasks x changes, which these counts catch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.cli import SUSPENDING, Served, write

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.cli import follow as cli_follow
from aether_es.cli.main import main
from aether_es.client import Client
from aether_es.errors import ApiError, NotFoundError
from aether_es.projections import run_progress
from aether_es.projections.run_progress import RunProgress
from aether_es.projections.run_state import RunState, TaskRunView
from bench.scenarios import dag_workflow, loop_workflow

PROGRESS_LINE = re.compile(r"^  \S+ +\S+  \[\d+/\d+\]$")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of everything that costs O(tasks) or O(1) per task run, wherever the follower might make them."""
    counts: Counter[str] = Counter()
    for owner, name in (
        (RunState, "to_dict"),
        (RunState, "progress"),
        (TaskRunView, "to_dict"),
    ):
        original = getattr(owner, name)

        def wrapper(*args: Any, _original: Any = original, _key: str = f"{owner.__name__}.{name}") -> Any:
            counts[_key] += 1
            return _original(*args)

        monkeypatch.setattr(owner, name, wrapper)
    fold = run_progress.apply

    def folded(*args: Any) -> None:
        counts["folded"] += 1
        fold(*args)

    monkeypatch.setattr(run_progress, "apply", folded)
    return counts


def _run(server: EmbeddedNatsServer, tmp_path: Path, document: dict[str, Any], *extra: str) -> tuple[int, str]:
    tmp_path.mkdir(exist_ok=True)
    path = write(tmp_path, "workflow.json", document)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", str(path), "--nats", server.url, "--state-dir", str(tmp_path / "state"), *extra])
    return code, out.getvalue()


def _progress_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if PROGRESS_LINE.match(line)]


def _follow_cost(nats_server: EmbeddedNatsServer, tmp_path: Path, counted: Counter[str], tasks: int) -> Counter[str]:
    counted.clear()
    code, out = _run(nats_server, tmp_path / str(tasks), loop_workflow(tasks))
    assert code == 0, out
    lines = _progress_lines(out)
    assert len(lines) == 4 * (tasks + 1)  # Created, Ready, Running, Succeeded of every task run, once each
    assert lines[-1].startswith("  Succeeded  fan  ")
    return counted | Counter(lines=len(lines))


def test_following_a_run_does_work_in_proportion_to_its_events(
    nats_server: EmbeddedNatsServer, tmp_path: Path, counted: Counter[str]
) -> None:
    small = _follow_cost(nats_server, tmp_path, counted, 100)
    large = _follow_cost(nats_server, tmp_path, counted, 400)
    for cost in (small, large):
        assert cost["RunState.to_dict"] == 0 and cost["RunState.progress"] == 0
        assert cost["TaskRunView.to_dict"] == 0
    for cost, tasks in ((small, 100), (large, 400)):
        assert 4 * (tasks + 1) <= cost["folded"] <= 6 * (tasks + 1)  # each event of the run folded once
    assert large["lines"] < 4.1 * small["lines"]


def test_run_prints_totals_known_up_front_and_children_before_their_parent(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    code, out = _run(nats_server, tmp_path, dag_workflow(3, chained=True))
    assert code == 0, out
    lines = [line.split() for line in _progress_lines(out)]
    assert {fields[-1] for fields in lines} <= {f"[{n}/4]" for n in range(5)}
    ends = [fields[1] for fields in lines if fields[0] == "Succeeded"]
    assert ends[-1] == "main" and sorted(ends[:-1]) == ["main/t0", "main/t1", "main/t2"]


def test_run_json_prints_the_final_view_once(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    code, out = _run(nats_server, tmp_path, loop_workflow(5), "--json")
    assert code == 0
    view = json.loads(out)
    assert view["status"] == "Succeeded" and view["progress"] == "6/6" and len(view["tasks"]) == 6


def test_the_client_follows_a_run_to_its_end(served: Served, tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        async with await Client.connect(served.url) as client:
            run_id = await client.submit(loop_workflow(20))
            updates = [update async for update in client.follow(run_id)]
            return updates, await client.wait(run_id, timeout=30)

    updates, view = asyncio.run(scenario())
    changes = [change for update in updates for change in update.changes]
    assert updates[-1].phase == "Succeeded" and updates[-1].progress == "21/21"
    assert len(changes) == 4 * 21 and changes[-1].path == "fan" and changes[-1].phase == "Succeeded"
    assert view["status"] == "Succeeded" and len(view["tasks"]) == 21


def test_following_an_unknown_run_is_not_found(served: Served) -> None:
    async def scenario() -> None:
        async with await Client.connect(served.url) as client:
            with pytest.raises(NotFoundError, match="not found"):
                await client.wait("no-such-run")

    asyncio.run(scenario())
    result = served.run("watch", "no-such-run")
    assert result.returncode == 3 and "not found" in result.stderr


def test_watch_on_a_terminal_draws_only_the_task_runs_still_going(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames: list[str] = []
    monkeypatch.setattr(cli_follow, "_draw", lambda progress: frames.append(_frame(progress)))

    async def scenario() -> RunState:
        async with await Client.connect(served.url) as client:
            run_id = await client.submit(loop_workflow(30))
            return await cli_follow.follow(client.nc, client.layout, run_id, show=cli_follow.LIVE)

    state = asyncio.run(scenario())
    assert state.phase == "Succeeded" and frames and frames[-1].endswith("31/31 active=0")


def _frame(progress: RunProgress) -> str:
    return f"{cli_follow.progress_bar(progress.progress)} active={len(progress.active)}"


def test_following_stops_with_an_error_when_the_connection_closes(served: Served) -> None:
    async def scenario() -> None:
        async with await Client.connect(served.url) as client:
            run_id = await client.submit(SUSPENDING)
            updates = client.follow(run_id)
            closer = asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(client.nc.close()))
            try:
                with pytest.raises(ApiError, match="connection to NATS closed"):
                    while True:  # the run's later commits, then the close
                        await asyncio.wait_for(anext(updates), 10)
            finally:
                closer.cancel()

    asyncio.run(scenario())
