"""`aether-es engines` and the API's `engines.list`: the live engines' records from the leases bucket, what
each holds, and the system's partition count."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from support.cli import aether, serve
from support.naming import keys_of, spelling_problems

from aether_es import Client
from aether_es.adapters.nats.connection import NatsConnection
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.membership import NatsMembership
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.runtime.state_dir import NATS_URL_ENV


def _engines(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return aether("engines", "--nats", url, *extra)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_each_live_engine_is_listed_with_what_it_holds(
    nats_server: EmbeddedNatsServer, nats_conn: NatsConnection
) -> None:
    layout = await ensure(nats_conn.js, Layout(partitions=4))
    now = time.time()
    first = NatsMembership(nats_conn.js, layout, "engine-a", "2026-01-02T03:04:05Z", ttl=30)
    await first.beat({"partition.0": now - 12.0, "partition.2": now - 3.0, "singleton.watcher": now - 12.0})
    await NatsMembership(nats_conn.js, layout, "engine-b", "2026-01-02T03:04:06Z", ttl=30).beat({"partition.1": now})

    listed = _json(await asyncio.to_thread(_engines, nats_server.url, "--json"))
    assert listed["partitionCount"] == 4
    assert [e["engineID"] for e in listed["engines"]] == ["engine-a", "engine-b"]
    a = listed["engines"][0]
    assert (a["partitions"], a["singletons"], a["startedAt"], a["pid"]) == (
        [0, 2],
        ["watcher"],
        "2026-01-02T03:04:05Z",
        os.getpid(),
    )
    assert set(a["leaseAges"]) == {"partition.0", "partition.2", "singleton.watcher"}
    assert 12.0 <= a["leaseAges"]["partition.0"] < 30.0
    assert spelling_problems(keys_of(listed)) == []

    shown = await asyncio.to_thread(_engines, nats_server.url)
    assert shown.returncode == 0, shown.stderr
    summary, header, *rows = shown.stdout.splitlines()
    assert summary == "4 partitions, 2 live engines; held by none: 3"
    assert header.split() == ["ENGINE", "HOST", "PID", "STARTED", "PARTITIONS", "SINGLETONS", "LEASE", "AGES"]
    assert rows[0].split()[4:6] == ["0,2", "watcher"] and rows[1].split()[4:6] == ["1", "-"]

    await first.leave()
    left = _json(await asyncio.to_thread(_engines, nats_server.url, "--json"))
    assert [e["engineID"] for e in left["engines"]] == ["engine-b"]


async def test_a_served_engine_lists_itself_through_the_command_and_the_api(tmp_path: Path) -> None:
    process, url = serve(tmp_path / "state")
    try:
        deadline = time.monotonic() + 20
        while True:
            listed = _json(await asyncio.to_thread(_engines, url, "--json"))
            engines = listed["engines"]
            if engines and len(engines[0]["partitions"]) == listed["partitionCount"]:
                break
            assert time.monotonic() < deadline, listed
            await asyncio.sleep(0.3)
        (engine,) = engines
        assert engine["pid"] == process.pid
        assert engine["partitions"] == list(range(8))
        async with await Client.connect(url) as client:
            reply = await client.engines()
        assert reply.partition_count == 8
        assert [(e.engine_id, e.pid, e.partitions) for e in reply.engines] == [
            (engine["engineID"], process.pid, list(range(8)))
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_engines_says_what_it_cannot_reach(nats_server: EmbeddedNatsServer) -> None:
    bare = _engines(nats_server.url)
    assert bare.returncode == 1 and bare.stdout == ""
    assert "no leases bucket (aether_leases)" in bare.stderr
    assert _engines("nats://127.0.0.1:1").returncode == 1
    env = {k: v for k, v in os.environ.items() if k != NATS_URL_ENV}
    nowhere = aether("engines", env=env, cwd=Path("/"))
    assert nowhere.returncode == 2 and "--nats" in nowhere.stderr
