"""What `engines.list` answers, read from the leases bucket: one reading for the API and `aether-es engines`."""

from __future__ import annotations

import dataclasses

from nats.js import JetStreamContext

from aether_es.adapters.nats.layout import Layout, recorded_partitions
from aether_es.adapters.nats.membership import list_engines
from aether_es.api import messages as m


async def read_engines(js: JetStreamContext, layout: Layout) -> m.ListEnginesReply:
    """The live engines, by id, and the system's partition count (0 before an engine created the system: a
    reading never records one, which would fix the count before the first engine chose it)."""
    engines = await list_engines(js, layout)
    return m.ListEnginesReply(
        partition_count=await recorded_partitions(js, layout) or 0,
        engines=[m.EngineView.model_validate(dataclasses.asdict(engine)) for engine in engines],
    )
