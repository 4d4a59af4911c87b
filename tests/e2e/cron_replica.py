"""A second engine process for the exactly-once cron test: `python cron_replica.py URL PREFIX SECONDS`.

It starts a full engine (and workers) on the given NATS server and layout prefix with a scheduler that
ticks every whole second, picks up the cron workflows stored there, runs for SECONDS and exits.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from every_second import EverySecond

from aether_es.runtime.stack import StackOptions, open_stack


async def main(url: str, prefix: str, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as state:
        stack = await open_stack(
            StackOptions(nats_url=url, state_dir=Path(state), prefix=prefix, cron_scheduler=EverySecond())
        )
        try:
            print("ready", flush=True)
            await asyncio.sleep(seconds)
        finally:
            await stack.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
