"""What `engines.list` answers, read from the leases bucket: one reading for the API and `aether-es engines`."""

from __future__ import annotations

import dataclasses

from nats.js import JetStreamContext

from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.membership import list_engines, system_partitions
from aether_es.api import messages as m


async def read_engines(js: JetStreamContext, layout: Layout) -> m.ListEnginesReply:
    """The live engines, by id, and the system's partition count."""
    engines = await list_engines(js, layout)
    return m.ListEnginesReply(
        partition_count=await system_partitions(js, layout),
        engines=[m.EngineView.model_validate(dataclasses.asdict(engine)) for engine in engines],
    )
