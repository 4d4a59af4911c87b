"""The engine on the in-memory event store and broker, with a worker pool on the memory channel: no server."""

from __future__ import annotations

import json
from pathlib import Path

from aether_es.adapters.idgen import CounterIdGenerator
from aether_es.adapters.memory import MemoryBroker, MemoryEventStore
from aether_es.model import phases as ph
from aether_es.runtime.engine import Engine
from aether_es.worker.executors.echo import ECHO_TYPE, EchoExecutor
from aether_es.worker.pool import WorkerPool

CORPUS = Path(__file__).parent.parent / "corpus"


async def test_a_dag_workflow_succeeds_on_the_memory_adapters() -> None:
    store, broker = MemoryEventStore(), MemoryBroker()
    engine = Engine(store=store, broker=broker, ids=CounterIdGenerator())
    pool = WorkerPool(broker.channel(), {ECHO_TYPE: EchoExecutor()}, concurrency=4, fetch_timeout=0.2)
    await engine.start()
    await pool.start()
    try:
        run_id = await engine.submit((CORPUS / "workflows" / "05-dag-diamond.json").read_text())
        view = await engine.wait(run_id, timeout=10)
    finally:
        await pool.stop(timeout=5)
        await engine.stop()
    expected = json.loads((CORPUS / "assertions" / "05-dag-diamond.json").read_text())
    assert view["status"] == ph.SUCCEEDED == expected["expectPhase"]
    assert {p["name"]: p["value"] for p in view["outputs"]["parameters"]} == expected["expectOutputs"]
    assert len(view["tasks"]) == expected["expectTaskCount"]
    assert {t["taskName"]: t["status"] for t in view["tasks"] if t["templateType"] == "task"} == {
        name: ph.SUCCEEDED for name in ["spring", "east", "west", "delta"]
    }
    assert [s.phase for s in await store.summaries()] == [ph.SUCCEEDED]
    assert [s.commit.run_id async for s in store.load_all()] == [run_id] * len(await store.load(run_id))
