"""`aether-es serve` killed with SIGKILL in the middle of a large loop: a new serve on the same state finishes it.

The nats-server outlives the killed serve (the test runs its own), so nothing is redelivered by a server
restart: what the dead engine and workers held comes back only through the ack waits of the report and task
consumers, and the time from restart to finish shows how long that takes.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import nats
from nats.aio.msg import Msg
from support.cli import serve

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.client import Client
from aether_es.model import phases as ph
from bench.scenarios import loop_workflow

ITEMS = 2_000
REPORTS_BEFORE_KILL = 20
FINISH_WITHIN = 180.0


def _stop(process: subprocess.Popen[str] | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
    if process is not None:
        process.communicate(timeout=30)


async def _finished(client: Client, run_id: str, timeout: float) -> str:
    """The run's status once terminal; fails after `timeout` seconds (the engine may still be starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = str((await client.get(run_id))["status"])
        except Exception:  # the restarted engine does not answer yet
            status = ""
        if status in ph.TERMINAL:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} not finished {timeout:.0f} s after the restart")


async def test_a_loop_survives_kill_9_of_serve(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    state = tmp_path / ".aether"
    nc = await nats.connect(nats_server.url)
    reports = 0
    enough = asyncio.Event()

    async def count(_: Msg) -> None:
        nonlocal reports
        reports += 1
        if reports >= REPORTS_BEFORE_KILL:
            enough.set()

    first: subprocess.Popen[str] | None = None
    second: subprocess.Popen[str] | None = None
    try:
        await nc.subscribe("aether.report.>", cb=count)
        first, _ = serve(state, "--nats", nats_server.url, "--workers", "4")
        client = Client(nc, timeout=2.0)
        run_id = await client.submit(loop_workflow(ITEMS))
        await asyncio.wait_for(enough.wait(), 60)
        first.kill()  # SIGKILL: no drain, no hand-back, nothing acked from here on
        _stop(first)
        store = NatsEventStore(nc, Layout())
        [summary] = [s for s in await store.summaries() if s.run_id == run_id]
        assert summary.phase not in ph.TERMINAL  # killed mid-run

        restarted = time.monotonic()
        second, _ = serve(state, "--nats", nats_server.url, "--workers", "4")
        status = await _finished(client, run_id, FINISH_WITHIN)
        print(f"\n{ITEMS}-task loop finished {time.monotonic() - restarted:.1f} s after serve was restarted")
        assert status == ph.SUCCEEDED
    finally:
        _stop(first)
        _stop(second)
        await nc.close()
