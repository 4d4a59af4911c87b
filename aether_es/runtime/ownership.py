"""Holding this engine's share of the partitions, and the jobs that run once per system, through leases.

Every `ttl / 3` seconds the engine renews its membership, computes the assignment of partitions over the
live members (`cluster.partitions.assign`; every engine computes the same one), gives up the partitions that
are no longer its own (they move to their new owner at its next round), renews the leases of the others and
takes those of its share that are free. A dead engine's membership and leases lapse after `ttl`, and its
share is then taken at the survivors' next round: failover takes from `ttl * 2/3` to `ttl * 4/3` seconds
after the crash.

A singleton (the timeout watcher, the event feed's projector) runs where its lease is held. An engine that
cannot renew for most of a TTL (the server away) stops everything it holds rather than act on leases that may
have lapsed; the runs' sequences fence any decision made meanwhile, and an append they refuse starts a round
at once, so an engine that lost a partition without noticing stops deciding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.nats.connection import LogThrottle
from aether_es.cluster.partitions import assign
from aether_es.ports.leases import Leases
from aether_es.ports.membership import Membership
from aether_es.runtime.engine import Engine

log = logging.getLogger("aether_es.ownership")

DEFAULT_LEASE_TTL = 6.0


@dataclass(frozen=True, slots=True)
class Singleton:
    """A job that must run once per system: started where its lease is taken, stopped where it is lost."""

    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


def partition_key(partition: int) -> str:
    return f"partition.{partition}"


def singleton_key(name: str) -> str:
    return f"singleton.{name}"


class Ownership:
    def __init__(
        self,
        engine: Engine,
        membership: Membership,
        leases: Leases,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        singletons: Sequence[Singleton] = (),
    ) -> None:
        if engine.partitions is None:
            raise ValueError("Ownership needs a partitioned engine")
        self._engine = engine
        self._partitions = engine.partitions
        self._membership = membership
        self._leases = leases
        self.ttl = ttl
        self._singletons = {singleton.name: singleton for singleton in singletons}
        self._taken: dict[str, float] = {}
        """The leases held, by key, and when each was taken (epoch seconds)."""
        self._renewed = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._early = asyncio.Event()
        self._failures = LogThrottle(log, interval=10.0)
        engine.contested = self._early.set

    async def start(self) -> None:
        """Take this engine's share of what is free now, then keep at it in the background."""
        await self._round()
        self._task = asyncio.create_task(self._keep(), name="ownership")

    async def stop(self) -> None:
        """Hand everything over: partitions first (their decisions in flight finish), then singletons, then
        the membership, so the others take them at their next round rather than after a TTL. An engine alone
        (`aether-es run`) has nobody to hand its report loops' last fetches to, and does not wait for them."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self._drop_all(release=True, hand_over=await self._others())
        with contextlib.suppress(Exception):
            await self._membership.leave()

    async def _keep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # a run another engine wrote to ends the wait early
                await asyncio.wait_for(self._early.wait(), self.ttl / 3)
            self._early.clear()
            try:
                await self._round()
            except Exception as exc:
                lapsed = time.monotonic() - self._renewed > self.ttl * 2 / 3
                if lapsed and (self._engine.owned or self._taken):
                    log.warning(
                        "engine %s: leases not renewed for %.1fs (%r); stopping what it held, as they may have "
                        "lapsed (it takes its share again once NATS answers)",
                        self._membership.engine_id,
                        time.monotonic() - self._renewed,
                        exc,
                    )
                    await self._drop_all(release=False, hand_over=False)  # NATS away: no fetch to end
                else:
                    self._failures.warning(
                        "round", "engine %s: leases not renewed (%r)", self._membership.engine_id, exc
                    )

    async def _round(self) -> None:
        members = await self._membership.members()
        me = self._membership.engine_id
        share = assign(self._partitions, [*members, me]).get(me, frozenset())
        await self._give_up(self._engine.owned - share, release=True)
        held = []
        for partition in sorted(share):
            if await self._hold(partition_key(partition)):
                held.append(partition)
            elif partition in self._engine.owned:
                log.warning("engine %s: lost partition %d to another engine", me, partition)
                await self._engine.lose(partition)
        await self._engine.gain(held)
        for name, singleton in self._singletons.items():
            key = singleton_key(name)
            running = key in self._taken
            if await self._hold(key):
                if not running:
                    log.info("engine %s: running the %s", me, name)
                    await singleton.start()
            elif running:
                await singleton.stop()
        await self._membership.beat(self._taken)  # after the round, so the record says what it holds now
        self._renewed = time.monotonic()

    async def _hold(self, key: str) -> bool:
        if await self._leases.hold(key):
            self._taken.setdefault(key, time.time())
            return True
        self._taken.pop(key, None)
        return False

    async def _release(self, key: str) -> None:
        self._taken.pop(key, None)
        try:
            await self._leases.release(key)
        except Exception as exc:  # it lapses after its TTL anyway
            log.warning("lease %s not released (%r); it lapses in %.0fs", key, exc, self.ttl)

    async def _others(self) -> bool:
        """Whether another engine is alive (so presumed when NATS cannot say)."""
        try:
            return any(member != self._membership.engine_id for member in await self._membership.members())
        except Exception:
            return True

    async def _give_up(self, partitions: frozenset[int], *, release: bool, hand_over: bool = True) -> None:
        """Lose the partitions together; handed over, each waits for its last fetch to end (about a second)."""
        await asyncio.gather(*(self._engine.lose(p, hand_over=hand_over) for p in partitions))
        if release:
            for partition in sorted(partitions):
                await self._release(partition_key(partition))

    async def _drop_all(self, *, release: bool, hand_over: bool) -> None:
        await self._give_up(self._engine.owned, release=release, hand_over=hand_over)
        for name, singleton in self._singletons.items():
            key = singleton_key(name)
            if key in self._taken:
                try:
                    await singleton.stop()
                except Exception as exc:
                    log.warning("the %s did not stop cleanly (%r)", name, exc)
                if release:
                    await self._release(key)
        if not release:
            self._taken.clear()
