"""`aether-es serve`: run the engine, its request/reply API and event feed (and, optionally, workers).

Against `--nats URL` / $AETHER_NATS_URL, or an embedded nats-server under `--state-dir` when none is given.
The URL it serves on is written to `<state-dir>/nats.url`, where the other commands find it. SIGINT and
SIGTERM stop it cleanly: the API stops taking requests, workers finish (or give back) what they hold, and
the engine completes every decision in flight before the connection closes; nothing acknowledged is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from aether_es.api.service import start_api
from aether_es.cli import exits
from aether_es.cli.remote import URL_FILE, RemoteError, add_remote_options, auth_options, fail
from aether_es.runtime.stack import DEFAULT_STATE_DIR, StackOptions, open_stack


def register(commands: Any) -> None:
    parser = commands.add_parser("serve", help="run the engine, its API and event feed until stopped")
    add_remote_options(parser)
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="the embedded server's store and the URL file"
    )
    parser.add_argument("--workers", type=int, default=0, help="in-process worker slots (default 0: none)")
    parser.add_argument("--no-feed", action="store_true", help="do not publish the event feed")
    parser.add_argument(
        "--replicas", type=int, default=1, help="JetStream replicas of the streams and buckets it creates (default 1)"
    )
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    if args.workers < 0:
        print("aether: serve: --workers must be 0 or more", file=sys.stderr)
        return exits.INVALID
    if not 1 <= args.replicas <= 5:
        print("aether: serve: --replicas must be from 1 to 5", file=sys.stderr)
        return exits.INVALID
    try:
        auth = auth_options("serve", args)
    except RemoteError as error:
        return fail(error)
    options = StackOptions(
        nats_url=args.nats,
        state_dir=args.state_dir,
        prefix=args.prefix,
        workers=args.workers,
        feed=not args.no_feed,
        auth=auth,
        replicas=args.replicas,
    )
    try:
        stack = await open_stack(options)
    except Exception as exc:
        print(f"aether: serve: cannot start: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return exits.FAILED
    url = stack.url
    url_file = args.state_dir / URL_FILE
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    api = None
    try:
        api = await start_api(stack)
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text(url + "\n")
        print(f"aether-es serving on {url} (prefix {args.prefix}); stop with Ctrl-C", flush=True)
        await stopping.wait()
        print("stopping ...", flush=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if api is not None:
            await api.stop()
        await stack.close()
        with contextlib.suppress(OSError):
            if url_file.read_text().strip() == url:
                url_file.unlink()
    print("stopped", flush=True)
    return exits.OK
