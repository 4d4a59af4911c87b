"""Leases on a real KV bucket: one owner at a time, renewal, expiry and takeover, release."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext

from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.leases import NatsLeases


async def test_one_owner_at_a_time_then_takeover_after_expiry(js: JetStreamContext) -> None:
    layout = Layout(prefix="lease")
    await ensure(js, layout)
    first, second = NatsLeases(js, layout, "engine-a", ttl=1), NatsLeases(js, layout, "engine-b", ttl=1)
    assert await first.hold("cron.x")
    assert not await second.hold("cron.x")
    assert await first.hold("cron.x")  # renewal
    await asyncio.sleep(2.2)  # no renewal: the lease lapses
    assert await second.hold("cron.x")
    assert not await first.hold("cron.x")  # the old owner cannot renew what another now holds
    await second.release("cron.x")
    assert await first.hold("cron.x")


async def test_independent_keys(js: JetStreamContext) -> None:
    layout = Layout(prefix="lease2")
    await ensure(js, layout)
    first, second = NatsLeases(js, layout, "a"), NatsLeases(js, layout, "b")
    assert await first.hold("cron.one") and await second.hold("cron.two")
    await first.release("cron.unknown")  # releasing what one does not hold is nothing


async def test_an_owner_restarted_under_its_name_takes_its_lease_back_at_once(js: JetStreamContext) -> None:
    """A restarted `serve` keeps its engine id: the lease its previous life held is its own again without
    waiting for the TTL, and nobody else's lease is taken that way."""
    layout = Layout(prefix="lease3")
    await ensure(js, layout)
    assert await NatsLeases(js, layout, "engine-a", ttl=30).hold("partition.1")
    again, other = NatsLeases(js, layout, "engine-a", ttl=30), NatsLeases(js, layout, "engine-b", ttl=30)
    assert not await other.hold("partition.1")
    assert await again.hold("partition.1")
    assert await again.hold("partition.1")  # and renews it as its own
    assert not await other.hold("partition.1")
