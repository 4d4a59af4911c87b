"""The worker registry on a JetStream KV bucket: one key per worker, kept alive by per-message TTLs.

Each registration is published with `Nats-TTL`, so a worker that stops heartbeating simply vanishes from
the bucket; a heartbeat republishes the value (with a fresh `heartbeatAt`) under the key's last sequence, so
it cannot resurrect a registration that lapsed or was removed in the meantime. Listing reads every live key
in one pass over the bucket (one ephemeral consumer), not one request per key.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import APIError, KeyNotFoundError
from nats.js.kv import KeyValue

from aether_es.adapters.nats.kv_feed import read_bucket
from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.model import clock
from aether_es.ports.worker_registry import WorkerInfo, WorkerNotFound

log = logging.getLogger(__name__)

DEFAULT_TTL = 15.0
_WRONG_LAST_SEQUENCE = 10071
_RENEW_ATTEMPTS = 5


def info_to_dict(info: WorkerInfo) -> dict[str, Any]:
    """The JSON shape of a registration (also what `aether-es workers --json` prints)."""
    return {
        "id": info.id,
        "executorTypes": list(info.executor_types),
        "schemas": {str(t): dict(schema) for t, schema in info.schemas.items()},
        "tags": dict(info.tags),
        "registeredAt": info.registered_at,
        "heartbeatAt": info.heartbeat_at,
    }


def info_from_dict(data: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=str(data["id"]),
        executor_types=tuple(str(t) for t in data.get("executorTypes") or ()),
        schemas={str(t): dict(schema) for t, schema in (data.get("schemas") or {}).items()},
        tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
        registered_at=str(data.get("registeredAt") or ""),
        heartbeat_at=str(data.get("heartbeatAt") or ""),
    )


def ttl_seconds(ttl: float) -> int:
    """Per-message TTLs are whole seconds, at least 1: round up so a registration never lapses early."""
    if not ttl >= 1:
        raise ValueError(f"worker registry ttl must be at least 1 second, got {ttl}")
    return math.ceil(ttl)


class NatsWorkerRegistry:
    """`WorkerRegistry` on the `layout.workers_bucket` bucket (created by `layout.ensure`).

    `ttl` is how long a registration lives without a heartbeat, rounded up to whole seconds.
    """

    def __init__(self, js: JetStreamContext, layout: Layout, ttl: float = DEFAULT_TTL) -> None:
        self._js = js
        self._layout = layout
        self._bucket = layout.workers_bucket
        self._ttl = ttl_seconds(ttl)
        self._kv: KeyValue | None = None

    @property
    def ttl(self) -> float:
        return float(self._ttl)

    async def register(self, info: WorkerInfo) -> None:
        check_id("worker id", info.id)
        now = clock.now()
        await self._publish(replace(info, registered_at=info.registered_at or now, heartbeat_at=now))

    async def unregister(self, worker_id: str) -> None:
        await self._entry(worker_id)
        kv = await self._bind()
        # A purge marker, not a delete: it drops the value, and its own TTL keeps tombstones from piling up.
        await kv.purge(worker_id, msg_ttl=self._ttl)

    async def heartbeat(self, worker_id: str) -> None:
        for _ in range(_RENEW_ATTEMPTS):
            info, revision = await self._entry(worker_id)
            try:
                await self._publish(replace(info, heartbeat_at=clock.now()), last=revision)
                return
            except APIError as exc:
                if exc.err_code != _WRONG_LAST_SEQUENCE:
                    raise
                # Changed since we read it: re-registered (read again), expired or removed (not found).
        raise WorkerNotFound(f"worker {worker_id!r} kept changing while renewing its registration")

    async def get(self, worker_id: str) -> WorkerInfo:
        info, _ = await self._entry(worker_id)
        return info

    async def list_all(self) -> list[WorkerInfo]:
        values = await read_bucket(self._js, self._bucket)
        workers: list[WorkerInfo] = []
        for key, value in values.items():
            try:
                workers.append(info_from_dict(orjson.loads(value)))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("ignoring unreadable worker registration %r: %r", key, exc)
        return sorted(workers, key=lambda w: w.id)

    async def list_by_executor_type(self, executor_type: str) -> list[WorkerInfo]:
        return [w for w in await self.list_all() if executor_type in w.executor_types]

    # --- internals -----------------------------------------------------------------------------------

    async def _bind(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._js.key_value(self._bucket)
        return self._kv

    async def _entry(self, worker_id: str) -> tuple[WorkerInfo, int]:
        try:
            check_id("worker id", worker_id)
        except ValueError:
            raise WorkerNotFound(worker_id) from None
        kv = await self._bind()
        try:
            entry = await kv.get(worker_id)
        except KeyNotFoundError:
            raise WorkerNotFound(worker_id) from None
        if entry.value is None:
            raise WorkerNotFound(worker_id)
        return info_from_dict(orjson.loads(entry.value)), entry.revision or 0

    async def _publish(self, info: WorkerInfo, last: int | None = None) -> None:
        headers = None if last is None else {Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(last)}
        await self._js.publish(
            f"$KV.{self._bucket}.{info.id}",
            orjson.dumps(info_to_dict(info)),
            headers=headers,
            msg_ttl=self._ttl,
        )
