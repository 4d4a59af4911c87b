"""`CommandRouter` on NATS: a command for a run another engine owns is a request on
`<prefix>.partition.<p>.command`, which only the partition's owner subscribes to; the reply is its outcome.

While a partition changes hands nobody answers for a moment: the request is tried again with a growing wait
until `patience` runs out (a little more than a lease's TTL, the longest a partition can be without an owner
after a crash). A request that reached an owner is never sent again: commands are not all idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from aether_es.adapters.nats.layout import Layout
from aether_es.api import messages as m
from aether_es.api.errors import error_reply
from aether_es.client import raise_error
from aether_es.errors import ApiError
from aether_es.ports.routing import Command, CommandHandler

log = logging.getLogger(__name__)

REPLY_TIMEOUT = 60.0
"""Seconds a forwarded command waits for the owner's decision (a decision waits for its commit)."""


class _Subscription:
    def __init__(self, sub: Subscription) -> None:
        self._sub = sub

    async def stop(self) -> None:
        """No more commands; those taken go on and answer, so a partition's hand-over never waits for one
        (its decision may wait for NATS, or be fenced if the next owner decides first)."""
        await self._sub.unsubscribe()


class NatsCommandRouter:
    def __init__(self, nc: Client, layout: Layout, patience: float = 20.0) -> None:
        self._nc = nc
        self._layout = layout
        self.patience = patience

    def _subject(self, partition: int) -> str:
        return f"{self._layout.prefix}.partition.{partition}.command"

    async def forward(self, partition: int, command: Command) -> None:
        body = orjson.dumps(command)
        give_up = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                reply = await self._nc.request(self._subject(partition), body, timeout=REPLY_TIMEOUT)
                break
            except nats.errors.NoRespondersError:
                if time.monotonic() + delay > give_up:
                    raise ApiError(
                        "unavailable",
                        f"aether: unavailable: no engine owns partition {partition} of run "
                        f"{command.get('runID')!r} now; try again",
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except nats.errors.TimeoutError:
                raise ApiError(
                    "unavailable", f"aether: unavailable: the owner of partition {partition} did not answer in time"
                ) from None
        answer = orjson.loads(reply.data or b"{}")
        if "error" in answer:
            raise_error(m.ErrorDetail.model_validate(answer["error"]))

    async def serve(self, partition: int, handler: CommandHandler) -> _Subscription:
        tasks: set[asyncio.Task[None]] = set()

        async def answer(msg: Msg) -> None:
            try:
                await handler(orjson.loads(msg.data))
                body = b"{}"
            except Exception as exc:
                body = error_reply(exc).to_json()
            try:
                await msg.respond(body)
            except Exception as exc:  # the asker gave up, or the connection is away: it sees a timeout
                log.warning("partition %d: a forwarded command's reply was not sent (%r)", partition, exc)

        async def on_message(msg: Msg) -> None:
            task = asyncio.create_task(answer(msg))  # one slow command must not hold the others up
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        sub = await self._nc.subscribe(self._subject(partition), cb=on_message)
        return _Subscription(sub)
