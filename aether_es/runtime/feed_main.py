"""The event feed projector in a process of its own: `python -m aether_es.runtime.feed_main URL PREFIX`.

`serve` starts it (`runtime.feed_process`) so that projecting the feed does not take turns with the engine on
one event loop. Credentials come from the `AETHER_NATS_*` variables the parent sets. SIGTERM stops it after
publishing what was committed by then (up to `DRAIN` seconds); SIGINT is left to the parent, which sends
SIGTERM once its engine has stopped, so the feed drains last.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aether_es.adapters.nats.connection import NatsAuth, connect
from aether_es.adapters.nats.layout import Layout
from aether_es.cli.main import setup_logging
from aether_es.runtime.feed import FeedProjector
from aether_es.runtime.feed_process import DRAIN
from aether_es.runtime.gc_tuning import tune_for_engine
from aether_es.runtime.shutdown import within

log = logging.getLogger("aether_es.feed")


async def project(url: str, prefix: str) -> int:
    try:
        connection = await connect(url, name="aether-es-feed", auth=NatsAuth.from_env())
    except Exception as exc:
        log.warning("event feed: cannot connect to %s: %s", url, str(exc) or type(exc).__name__)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    feed = FeedProjector(connection, Layout(prefix=prefix))
    try:
        await feed.start()
        tune_for_engine()
        await stop.wait()
        await feed.stop(drain=DRAIN)
    finally:
        await within("closing the event feed's NATS connection", connection.close(), 2.0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aether-es-feed", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("--verbose", type=int, default=0, help="as the parent's -v count")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(args.verbose)
    return asyncio.run(project(args.url, args.prefix))


if __name__ == "__main__":
    sys.exit(main())
