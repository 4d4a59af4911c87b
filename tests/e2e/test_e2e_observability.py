"""Seeing what runs, on a real system: `aether-es logs` (live with --follow), `aether-es graph` of a file and
of a run, the engine's metrics moved by a run, and a worker's own `/metrics` (`worker --metrics`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from support.cli import ROOT, Served, aether, write
from support.processes import until

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.nats.task_logs import read_logs
from aether_es.adapters.secrets import EnvSecretProvider
from aether_es.observability import metrics
from aether_es.observability.sampler import sample
from aether_es.runtime.stack import Stack, StackOptions, open_stack

SVG = "{http://www.w3.org/2000/svg}"


def gated(gate: Path) -> dict[str, Any]:
    """One shell task that says on stderr that it waits, waits for `gate` to exist, then prints `done`."""
    command = 'echo "waiting for the gate" >&2; while [ ! -e "$1" ]; do sleep 0.05; done; echo done'
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "gated"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": [{"name": "wait", "template": "wait"}]}},
                {"task": {"name": "wait",
                          "executor": {"type": "shell", "config": {"command": command, "args": [str(gate)]}}}},
            ],
        },
    }  # fmt: skip


def submit(served: Served, path: Path) -> str:
    done = aether("submit", str(path), "--nats", served.url)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_logs_follow_prints_a_shell_tasks_stderr_line_while_it_runs(served: Served, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run_id = submit(served, write(tmp_path, "gated.json", gated(gate)))
    out = tmp_path / "follow.out"
    with out.open("w") as sink:
        follower = subprocess.Popen(
            [sys.executable, "-m", "aether_es.cli.main", "logs", run_id, "--follow", "--nats", served.url],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        assert until(lambda: "wait stderr: waiting for the gate" in out.read_text(), 20), out.read_text()
        assert follower.poll() is None  # the task still waits: the line came live
        gate.touch()
        assert follower.wait(20) == 0, out.read_text()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert out.read_text().splitlines() == ["wait stderr: waiting for the gate", "wait stdout: done"]

    one = aether("logs", run_id, f"{run_id}-2", "--nats", served.url)
    assert (one.returncode, one.stdout) == (0, "stderr: waiting for the gate\nstdout: done\n"), one.stderr
    records = [
        json.loads(line) for line in aether("logs", run_id, "wait", "--json", "--nats", served.url).stdout.splitlines()
    ]
    assert [(r["taskRunID"], r["taskName"], r["attempt"], r["stream"], r["line"]) for r in records] == [
        (f"{run_id}-2", "wait", 1, "stderr", "waiting for the gate"),
        (f"{run_id}-2", "wait", 1, "stdout", "done"),
    ]  # fmt: skip
    missing = aether("logs", "no-such-run", "--nats", served.url)
    assert (missing.returncode, missing.stderr) == (3, 'aether: logs: workflow run "no-such-run" not found\n')


def test_graph_draws_a_file_in_each_format_and_a_run_with_its_phases(served: Served, tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "shell-pipeline.json")
    mermaid = aether("graph", example)
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("flowchart LR\n") and '  n0["write"]' in mermaid.stdout
    dot = aether("graph", example, "--format", "dot")
    assert dot.stdout.startswith('digraph "shell-pipeline" {') and "  n0 -> n1;" in dot.stdout
    laid_out = json.loads(aether("graph", example, "--format", "json").stdout)
    assert [n["id"] for n in laid_out["nodes"]] == ["write", "count", "top", "report"]
    picture = tmp_path / "pipeline.svg"
    assert aether("graph", example, "--format", "svg", "-o", str(picture)).returncode == 0
    drawn = [g.get("data-id") for g in ET.parse(picture).getroot().iter(f"{SVG}g") if "node" in (g.get("class") or "")]
    assert drawn == ["write", "count", "top", "report"]

    done = aether("submit", example, "--wait", "--nats", served.url, "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["runID"]
    svg = aether("graph", run_id, "--format", "svg", "--nats", served.url)
    phases = {
        g.get("data-id"): g.get("data-status") for g in ET.fromstring(svg.stdout).iter(f"{SVG}g") if g.get("data-id")
    }
    assert phases == dict.fromkeys(["write", "count", "top", "report"], "Succeeded")
    painted = aether("graph", run_id, "--format", "json", "--nats", served.url)
    assert painted.returncode == 0, painted.stderr
    graph = json.loads(painted.stdout)
    assert graph["status"] == "Succeeded" and all(n["status"] == "Succeeded" and n["taskRunID"] for n in graph["nodes"])
    assert aether("graph", "no-such-run", "--nats", served.url).returncode == 3
    bad = aether("graph", str(write(tmp_path, "bad.json", {"kind": "Workflow"})))
    assert bad.returncode == 2 and bad.stderr


@pytest_asyncio.fixture
async def engine_only(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    opened = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=0))
    try:
        yield opened
    finally:
        await opened.close()


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_run_moves_the_engines_counters_and_a_workers_own_metrics(engine_only: Stack, tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aether_es.cli.main",
            "worker",
            "--executors",
            "echo",
            "--metrics",
            "127.0.0.1:0",
            "--nats",
            engine_only.connection.nc.connected_url.geturl(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert worker.stdout is not None
        assert (await asyncio.to_thread(worker.stdout.readline)).startswith("worker ")
        url = (await asyncio.to_thread(worker.stdout.readline)).split("metrics on ", 1)[1].strip()
        before = {
            name: _value(name)
            for name in ("aether_runs_started_total", "aether_decisions_total", "aether_commits_total")
        }
        succeeded = _value("aether_runs_finished_total", phase="Succeeded")
        document = (ROOT / "examples" / "hello-pipeline.json").read_text()
        run_id = await engine_only.engine.submit(document)
        view = await engine_only.engine.wait(run_id, timeout=30)
        assert view["status"] == "Succeeded"
        tasks = len([t for t in view["tasks"] if t["templateType"] == "task"])
        assert _value("aether_runs_started_total") == before["aether_runs_started_total"] + 1
        assert _value("aether_runs_finished_total", phase="Succeeded") == succeeded + 1
        assert _value("aether_decisions_total") > before["aether_decisions_total"]
        assert _value("aether_commits_total") > before["aether_commits_total"]
        assert (
            _value("aether_commit_latency_seconds_count")
            >= _value("aether_commits_total") - before["aether_commits_total"]
        )

        await sample(engine_only.connection.js, engine_only.layout)
        assert _value("aether_workers_live", executor_type="echo") == 1
        assert _value("aether_queue_depth", executor_type="echo") == 0
        assert metrics.REGISTRY.get_sample_value("aether_feed_lag_commits") is not None

        text = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())).decode()
        lines = text.splitlines()
        assert f'aether_task_results_total{{executor_type="echo",phase="Succeeded"}} {float(tasks)}' in lines
        assert f'aether_task_duration_seconds_count{{executor_type="echo"}} {float(tasks)}' in lines
        assert f'aether_task_start_latency_seconds_count{{executor_type="echo"}} {float(tasks)}' in lines
        assert 'aether_tasks_running{executor_type="echo"} 0.0' in lines
    finally:
        worker.terminate()
        worker.wait(30)
    refused = aether("worker", "--executors", "echo", "--metrics", "here:port", "--nats", "nats://127.0.0.1:1")
    assert (refused.returncode, refused.stderr) == (
        2, "aether: worker: --metrics 'here:port': expected HOST:PORT or PORT, with PORT from 0 to 65535\n"
    )  # fmt: skip


async def test_a_secret_a_shell_task_prints_is_redacted_in_its_log(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    secret = "hunter2-very-secret-token"
    command = 'echo "token=$1"; printf %s "$1" | base64 >&2; echo "upper: $(printf %s "$1" | tr a-z A-Z)"'
    token = {"name": "token", "valueFrom": {"secretKeyRef": {"name": "vault", "key": "api"}}}
    config = {"command": command, "args": ["{{inputs.parameters.token}}"]}
    task = {"name": "main", "inputs": {"parameters": [token]}, "executor": {"type": "shell", "config": config}}
    workflow = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "leaky"},
        "spec": {"entrypoint": "main", "templates": [{"task": task}]},
    }
    secrets = EnvSecretProvider(environ={"AETHER_SECRET_VAULT_API": secret})
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=1, secrets=secrets))
    try:
        run_id = await stack.engine.submit(workflow)
        assert (await stack.engine.wait(run_id, timeout=30))["status"] == "Succeeded"
        lines = [r async for r in read_logs(stack.connection.js, stack.layout, run_id)]
    finally:
        await stack.close()
    assert sorted((r["stream"], r["line"]) for r in lines) == [
        ("stderr", "[redacted]"), ("stdout", "token=[redacted]"), ("stdout", "upper: [redacted]")
    ]  # fmt: skip
