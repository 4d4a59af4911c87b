"""Where a replayed event's CPU time goes, and what `aether-es replay --all` holds in memory.

`python -m bench.replay_stages [--events N] [--rounds R] [--rss]` loads the replay scenario's synthetic
history once, then per round reads it with the floor, with `load_all()` whose decoding is stubbed out, with
decoding only, and with the fold too: CPU time of this process per event, so the noise of a shared machine
mostly drops out; the differences between the stages are the glue over the floor's read, the decoding and the
fold. With `--rss` it also runs `aether-es replay --all` on that history and prints its peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from unittest import mock

from aether_es.adapters.nats import event_store
from aether_es.adapters.nats.connection import connect
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.events.envelope import Commit
from aether_es.projections.run_state import RunState, apply, start
from aether_es.runtime.gc_tuning import tune_for_engine
from bench import floor as fl
from bench.scenarios import _RUN_ID_TEMPLATE, _synthetic_run, fresh_server

NOTHING = Commit(commit_id="", run_id="")


async def _stage(store: NatsEventStore, decode: Callable[[bytes], Commit] | None, fold: bool) -> int:
    """Events read (and folded when `fold`), with `decode` in place of the codec when given."""
    states: dict[str, RunState] = {}
    events = 0
    with mock.patch.object(event_store, "decode_commit", decode or event_store.decode_commit):
        async for stored in store.load_all():
            for env in stored.commit.envelopes:
                events += 1
                if fold:
                    state = states.get(env.run_id)
                    if state is None:
                        states[env.run_id] = start(env)
                    else:
                        apply(state, env)
    return events


_PEAK = """
import sys
from aether_es.cli.main import main
code = main(sys.argv[1:])
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")), file=sys.stderr)
sys.exit(code)
"""
"""The command line, then its peak resident set as the kernel counts it for this process image (VmHWM):
`ru_maxrss` would also count the image of the big process that started it."""


def _replay_peak_mb(url: str, prefix: str) -> tuple[str, float]:
    """`aether-es replay --all`'s output and peak RSS in MB."""
    argv = [sys.executable, "-c", _PEAK, "replay", "--all", "--nats", url, "--prefix", prefix]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return done.stdout.strip(), int(done.stderr.split("VmHWM:")[-1].split()[0]) / 1024


async def main(events: int, rounds: int, rss: bool) -> None:
    template = _synthetic_run(100)
    runs = -(-events // 404)
    total = runs * 404
    layout = Layout(prefix="aether")
    async with fresh_server() as (server, _root):
        conn = await connect(server.url)
        try:
            await ensure(conn.js, layout)
            placeholder = _RUN_ID_TEMPLATE.encode()
            for r in range(runs):
                run_id = f"bench-r{r:07d}"
                for data in template:
                    await conn.js.publish_async(layout.run_subject(run_id), data.replace(placeholder, run_id.encode()))
            await conn.js.publish_async_completed()
            tune_for_engine()
            store = NatsEventStore(conn.nc, layout)
            decode = event_store.decode_commit
            for _ in range(rounds):
                began = time.process_time()
                await fl.replay_floor(conn.js, layout.runs_stream, layout.run_subjects, total)
                cpu = {"floor": time.process_time() - began}
                for name, stub, fold in (
                    ("read", lambda _data: NOTHING, False),
                    ("read+decode", lambda data: (decode(data), NOTHING)[1], False),
                    ("replay", None, True),
                ):
                    began = time.process_time()
                    await _stage(store, stub, fold)
                    cpu[name] = time.process_time() - began
                print("  ".join(f"{name} {seconds / total * 1e6:.2f}" for name, seconds in cpu.items()), "us/event")
            if rss:
                said, peak = _replay_peak_mb(server.url, layout.prefix)
                print(f"aether-es replay --all: {said}; peak RSS {peak:.0f} MB")
        finally:
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the history (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each stage (default 3)")
    parser.add_argument("--rss", action="store_true", help="also the peak RSS of `aether-es replay --all`")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds, args.rss))
