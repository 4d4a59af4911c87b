"""Which engines are alive: each one's record under `engine.<id>` in the leases bucket, put with a TTL at every
heartbeat, so a record vanishes a TTL after its engine stops beating (a kill -9 included).

The record says what the engine holds (its partitions and singletons, and since when), for `aether-es engines`;
the leases themselves, not the records, decide who owns what.
"""

from __future__ import annotations

import math
import os
import socket
import time
from dataclasses import dataclass, field

import orjson
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from aether_es.adapters.nats.layout import Layout, check_id

PREFIX = "engine."


@dataclass(frozen=True, slots=True)
class EngineInfo:
    engine_id: str
    host: str
    pid: int
    started_at: str
    partitions: list[int] = field(default_factory=list)
    singletons: list[str] = field(default_factory=list)
    lease_ages: dict[str, float] = field(default_factory=dict)
    """Seconds since each lease it holds was taken, by lease key."""


class NatsMembership:
    def __init__(self, js: JetStreamContext, layout: Layout, engine_id: str, started_at: str, ttl: float) -> None:
        self._js = js
        self._layout = layout
        self.engine_id = check_id("engine id", engine_id)
        self._started_at = started_at
        self._ttl = max(1, math.ceil(ttl))

    async def beat(self, taken: dict[str, float]) -> None:
        """Renew this engine's record, naming the leases it holds and when each was taken (epoch seconds)."""
        record = {
            "engineID": self.engine_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "startedAt": self._started_at,
            "leases": taken,
        }
        subject = f"$KV.{self._layout.leases_bucket}.{PREFIX}{self.engine_id}"
        await self._js.publish(subject, orjson.dumps(record), msg_ttl=self._ttl)

    async def members(self) -> list[str]:
        """The ids of the engines whose records are alive."""
        kv = await self._js.key_value(self._layout.leases_bucket)
        return [key[len(PREFIX) :] for key in await _member_keys(kv)]

    async def leave(self) -> None:
        kv = await self._js.key_value(self._layout.leases_bucket)
        await kv.purge(f"{PREFIX}{self.engine_id}")


async def _member_keys(kv: KeyValue) -> list[str]:
    """The membership keys alive now (nats-py's `keys(filters=...)` reads the whole bucket and matches
    substrings, so a filtered watch instead)."""
    watcher = await kv.watch(f"{PREFIX}*", ignore_deletes=True, meta_only=True)
    keys = []
    try:
        async for entry in watcher:
            if entry is None:
                break
            keys.append(entry.key)
    finally:
        await watcher.stop()
    return keys


async def list_engines(js: JetStreamContext, layout: Layout) -> list[EngineInfo]:
    """The live engines, by id, with what each holds."""
    kv = await js.key_value(layout.leases_bucket)
    keys = await _member_keys(kv)
    now = time.time()
    engines = []
    for key in sorted(keys):
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            continue  # gone meanwhile
        record = orjson.loads(entry.value or b"{}")
        leases: dict[str, float] = record.get("leases", {})
        engines.append(
            EngineInfo(
                engine_id=str(record.get("engineID", key[len(PREFIX) :])),
                host=str(record.get("host", "")),
                pid=int(record.get("pid", 0)),
                started_at=str(record.get("startedAt", "")),
                partitions=sorted(int(k.split(".", 1)[1]) for k in leases if k.startswith("partition.")),
                singletons=sorted(k.split(".", 1)[1] for k in leases if k.startswith("singleton.")),
                lease_ages={k: round(max(0.0, now - taken), 3) for k, taken in sorted(leases.items())},
            )
        )
    return engines


__all__ = ["EngineInfo", "NatsMembership", "list_engines"]
