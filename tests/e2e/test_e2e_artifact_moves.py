"""Artifacts move between real tasks as a user runs them: shell tasks through `aether-es run`, a served system
whose tasks run on a separate `aether-es worker` (shell and an `@executor` function taking and returning
files, a folder), `aether-es artifacts` to list and fetch them, retention removing them, and a 100 MiB
artifact that leaves small runs finishing promptly."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError, ObjectNotFoundError
from support.cli import ROOT, aether, write
from support.processes import Child

from aether_es.client import Client
from aether_es.model import phases as ph

EXAMPLE = ROOT / "examples" / "artifact-handoff.json"

MODULE = """
from pathlib import Path

from aether_es.worker import executor


@executor("tally")
def tally(report: Path, workdir: Path, unit: str = "fruit") -> dict:
    lines = report.read_text().splitlines()
    (workdir / "summary.txt").write_text(f"{sum(int(line.split()[1]) for line in lines)} {unit}")
    return {"lines": len(lines), "summary": Path("summary.txt")}
"""

REPORT = "apples 6\npears 10\nplums 15\n"


def _task(name: str, executor: dict[str, Any], **parts: Any) -> dict[str, Any]:
    return {"task": {"name": name, "executor": executor, **parts}}


def _shell(command: str) -> dict[str, Any]:
    return {"type": "shell", "config": {"command": command}}


def _workflow(name: str, tasks: list[dict[str, Any]], *templates: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": [{"dag": {"name": "main", "tasks": tasks}}, *templates]},
    }


def _from(task: str, name: str) -> dict[str, Any]:
    return {"name": name, "from": f"tasks.{task}.outputs.artifacts.{name}"}


RELAY = _workflow(
    "relay",
    [
        {"name": "write", "template": "write"},
        {
            "name": "tally",
            "template": "tally",
            "dependencies": ["write"],
            "arguments": {"artifacts": [_from("write", "report")]},
        },
        {
            "name": "read",
            "template": "read",
            "dependencies": ["tally"],
            "arguments": {"artifacts": [_from("tally", "summary"), _from("write", "charts")]},
        },
    ],
    _task(
        "write",
        _shell(f"printf '{REPORT}' > report.txt && mkdir -p charts/2026 && echo '<q3/>' > charts/2026/q3.svg"),
        outputs={"artifacts": [{"name": "report", "path": "report.txt"}, {"name": "charts", "path": "charts"}]},
    ),
    _task(
        "tally",
        {"type": "tally"},
        inputs={"artifacts": [{"name": "report"}]},
        outputs={"artifacts": [{"name": "summary"}]},
    ),
    _task(
        "read",
        _shell("cat inputs/summary && echo && cat charts/2026/q3.svg"),
        inputs={"artifacts": [{"name": "summary"}, {"name": "charts", "path": "charts"}]},
    ),
)
"""write (shell: a file and a folder) -> tally (an SDK function: a file in, a file out) -> read (shell)."""


def _outputs(view: dict[str, Any], task: str) -> dict[str, Any]:
    return next(t for t in view["tasks"] if t["taskName"] == task)["outputs"]


def test_a_file_passes_from_shell_to_shell_through_run_and_a_missing_one_fails_naming_it(tmp_path: Path) -> None:
    ran = aether("run", str(EXAMPLE), "--state-dir", str(tmp_path / "one"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert 'summary = "3 lines, 31 fruit"' in ran.stdout

    missing = _workflow(
        "missing",
        [{"name": "write", "template": "write"}],
        _task(
            "write",
            _shell("echo nothing written"),
            outputs={
                "artifacts": [
                    {"name": "maybe", "path": "maybe.txt", "optional": True},
                    {"name": "report", "path": "out/report.txt"},
                ]
            },
        ),
    )
    ran = aether("run", str(write(tmp_path, "missing.json", missing)), "--state-dir", str(tmp_path / "two"))
    assert ran.returncode == 4, ran.stdout + ran.stderr
    assert "output artifact 'report': out/report.txt does not exist in the task's work directory" in ran.stdout


async def _serve(state: Path, workers: int, logs: Path) -> tuple[Child, str]:
    served = Child("serve", ["serve", "--state-dir", str(state), "--workers", str(workers)], logs)
    line = await served.start("serving on")
    return served, line.split("serving on ", 1)[1].split(" ", 1)[0]


def _quiet(child: Child) -> None:
    """Nothing went wrong: the process logged no WARNING or ERROR."""
    log = child.log_path.read_text()
    assert " WARNING " not in log and " ERROR " not in log, log


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`serve` without workers, and an `aether-es worker` serving shell and the module's `tally`."""
    tmp = tmp_path_factory.mktemp("artifacts")
    (tmp / "tally_module.py").write_text(MODULE)
    served, url = asyncio.run(_serve(tmp / ".aether", 0, tmp / "logs"))
    worker = Child(
        "worker",
        ["worker", "--executors", "shell,tally", "--import", str(tmp / "tally_module.py"), "--nats", url],
        tmp / "logs",
    )
    try:
        asyncio.run(worker.start("serving"))
        yield url
    finally:
        assert worker.stop() == 0, worker.tail()
        served.stop()
    _quiet(worker)
    _quiet(served)


async def test_artifacts_move_through_a_separate_worker_and_are_listed_fetched_and_removed(
    system: str, tmp_path: Path
) -> None:
    url = system
    async with await Client.connect(url) as client:
        run_id = await client.submit(RELAY)
        view = await client.wait(run_id, timeout=60)
    assert view["status"] == "Succeeded", json.dumps(view, indent=1)
    assert {p["name"]: p["value"] for p in _outputs(view, "read")["parameters"]}["stdout"] == "31 fruit\n<q3/>"
    assert {p["name"]: p["value"] for p in _outputs(view, "tally")["parameters"]}["lines"] == 3

    listed = aether("artifacts", run_id, "--json", "--nats", url)
    assert listed.returncode == 0, listed.stderr
    stored = {a["name"]: a for a in json.loads(listed.stdout)}
    assert set(stored) == {"report", "charts", "summary"}
    report = stored["report"]
    assert report["taskName"] == "write" and report["size"] == len(REPORT)
    assert report["digest"] == "sha256:" + hashlib.sha256(REPORT.encode()).hexdigest()
    assert report["source"] == {
        "type": "nats",
        "config": {"bucket": "aether_artifacts", "key": f"{run_id}/{report['taskRunID']}/report"},
    }
    assert stored["charts"]["archive"] == {"type": "tar"}

    got = aether("artifacts", "get", run_id, "write", "report", "-o", str(tmp_path / "r.txt"), "--nats", url)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "r.txt").read_text() == REPORT and report["digest"] in got.stdout
    got = aether("artifacts", "get", run_id, "write", "charts", "-o", str(tmp_path / "charts"), "--nats", url)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "charts" / "2026" / "q3.svg").read_text() == "<q3/>\n"
    got = aether("artifacts", "get", run_id, "tally", "summary", "-o", "-", "--nats", url)
    assert got.returncode == 0 and got.stdout == "31 fruit"
    assert aether("artifacts", "get", run_id, "write", "nope", "--nats", url).returncode == 3
    only = aether("artifacts", run_id, "tally", "--nats", url)
    assert "summary" in only.stdout and "report" not in only.stdout

    removed = aether("retention", "--keep", "0", "--discard", "--nats", url)
    assert removed.returncode == 0, removed.stderr
    connection = await nats.connect(url)
    try:
        bucket = await connection.jetstream().object_store("aether_artifacts")
        for artifact in stored.values():
            with pytest.raises((ObjectNotFoundError, NotFoundError)):
                await bucket.get_info(artifact["source"]["config"]["key"])
    finally:
        await connection.close()


BIG = 100 * 1024 * 1024


async def test_a_100_mib_artifact_moves_while_small_runs_keep_finishing(tmp_path: Path) -> None:
    """In-process workers share the engine's event loop, as with `run`: moving the artifact must not hold it."""
    served, url = await _serve(tmp_path / ".aether", 4, tmp_path)
    big = _workflow(
        "big",
        [
            {"name": "make", "template": "make"},
            {
                "name": "check",
                "template": "check",
                "dependencies": ["make"],
                "arguments": {"artifacts": [_from("make", "blob")]},
            },
        ],
        _task(
            "make",
            _shell(f"head -c {BIG} /dev/zero > blob.bin"),
            timeout="60s",
            outputs={"artifacts": [{"name": "blob", "path": "blob.bin"}]},
        ),
        _task("check", _shell("wc -c < inputs/blob"), timeout="60s", inputs={"artifacts": [{"name": "blob"}]}),
    )
    small = _workflow("small", [{"name": "hi", "template": "hi"}], _task("hi", {"type": "echo"}))
    try:
        async with await Client.connect(url) as client:
            began = time.monotonic()
            big_id = await client.submit(big)
            slowest = 0.0
            while True:
                start = time.monotonic()
                view = await client.wait(await client.submit(small), timeout=30)
                assert view["status"] == "Succeeded"
                slowest = max(slowest, time.monotonic() - start)
                state = await client.get(big_id)
                if state["status"] in ph.TERMINAL:
                    break
                await asyncio.sleep(0.1)
            moved = time.monotonic() - began
    finally:
        served.stop()
    assert state["status"] == "Succeeded", json.dumps(state, indent=1)
    assert {p["name"]: p["value"] for p in _outputs(state, "check")["parameters"]}["stdout"] == str(BIG)
    assert slowest < 2.0, f"a small run took {slowest:.2f}s while the artifact moved"
    _quiet(served)
    print(f"100 MiB made, stored, fetched and checked in {moved:.1f}s; slowest small run {slowest * 1000:.0f} ms")
