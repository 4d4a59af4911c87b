"""`aether-es serve` whose cron scheduler fires every cron at each multiple of PERIOD seconds (5-field cron
cannot say less than a minute): `python serve_ticking.py PERIOD serve [OPTIONS]`.

Everything else is the command as shipped: only the stack's scheduler is swapped before it opens.
"""

from __future__ import annotations

import sys

from every_second import EverySecond

from aether_es.cli import serve_cmd
from aether_es.cli.main import main
from aether_es.runtime.stack import Stack, StackOptions, open_stack


def ticking(period: int) -> None:
    async def open_ticking(options: StackOptions) -> Stack:
        options.cron_scheduler = EverySecond(period)
        return await open_stack(options)

    serve_cmd.open_stack = open_ticking


if __name__ == "__main__":
    ticking(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
