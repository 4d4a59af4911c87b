"""`aether-es run FILE`: run one workflow end to end and show it happening.

Starts an embedded nats-server (unless `--nats` or $AETHER_NATS_URL names one), the engine and an
in-process worker pool; on a `--state-dir` a live process (`aether-es serve`) already serves, it submits to
that system instead and follows the run there, as `submit --wait` does. Prints each task's phase changes,
then the final phase and outputs. Exit 0 only when the run Succeeded, 4 when it ended otherwise, 1 when NATS
cannot be reached, 2 for invalid input (an invalid document, in which case nothing is started or written).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient

from aether_es.adapters.nats.layout import Layout
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.follow import LINES, QUIET, finish, follow
from aether_es.cli.python_options import add_allow_module
from aether_es.cli.remote import (
    RemoteError,
    actor_of,
    add_auth_options,
    add_reconnect_timeout,
    auth_options,
    fail,
    remote,
)
from aether_es.cli.secret_options import add_secret_options, secret_provider
from aether_es.cli.strict_option import add_strict_option
from aether_es.cli.terminal import say
from aether_es.cli.validate_cmd import read_valid
from aether_es.client import Client
from aether_es.errors import AetherError
from aether_es.runtime.shutdown import within
from aether_es.runtime.stack import StackOptions, open_stack
from aether_es.runtime.state_dir import DEFAULT_STATE_DIR, StateDirBusy, resolve_url, served_system
from aether_es.runtime.supervisor import SupervisionFailed, Supervisor, supervised

log = logging.getLogger("aether_es.run")

STOP_WITHIN = 10.0
"""Seconds stopping its own engine and workers may take before `run` goes on without them and takes its
nats-server down (what is left unfinished is in the log, for the next engine on that store)."""


EXIT_POLL = 0.1
"""Seconds an idle in-process worker's long poll lasts: `run` exits that soon after its run ends."""


def register(commands: Any) -> None:
    parser = commands.add_parser("run", help=summary("run"))
    parser.add_argument("file", help="path to the workflow JSON, or - for standard input")
    parser.add_argument("--nats", help="NATS URL (default: $AETHER_NATS_URL, else an embedded server)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the embedded server keeps its store (a served folder's system is used instead)",
    )
    parser.add_argument(
        "--workers", type=int, default=16, help="in-process worker slots (default 16; none on a served folder)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the final run view as JSON only")
    add_strict_option(parser)
    add_auth_options(parser)
    add_secret_options(parser)
    add_allow_module(parser)
    add_reconnect_timeout(parser, "gives up and exits 1")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    data = read_valid(args.file, strict=args.strict, command="run")
    if data is None:
        return 2
    try:
        auth = auth_options("run", args)
        secrets = secret_provider("run", args)
        served = None if resolve_url(args.nats) else await served_system(args.state_dir)
    except RemoteError as exc:
        return fail(exc)
    except StateDirBusy as exc:
        say(f"aether: run: {exc}", file=sys.stderr)
        return 1
    if served is not None:
        return await _run_served(args, data, served)
    options = StackOptions(
        nats_url=args.nats,
        state_dir=args.state_dir,
        workers=args.workers,
        worker_poll=EXIT_POLL,
        auth=auth,
        secrets=secrets,
        allowed_modules=args.allow_modules,
    )
    try:
        stack = await open_stack(options)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        say(f"aether: run: cannot connect to NATS: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    except StateDirBusy as exc:
        say(f"aether: run: {exc}", file=sys.stderr)
        return 1
    supervisor = Supervisor(stack.connection, stack.server, reconnect_timeout=args.reconnect_timeout)
    try:
        return await supervised(supervisor, _run(args, data, stack.engine.submit, stack.connection.nc, stack.layout))
    except SupervisionFailed as failure:
        log.warning("run: %s; giving up", failure)
        return exits.FAILED
    finally:
        if not await within("stopping the engine and workers", stack.close(), STOP_WITHIN):
            await within("closing the NATS connection", stack.connection.close(), 2.0)
            if stack.server is not None:
                stack.server.kill()


async def _run_served(args: argparse.Namespace, data: bytes, url: str) -> int:
    """Submit to the system that serves the state folder and follow the run there: that system's engine and
    workers run it, so a folder keeps one engine (a second one on a system is what `--nats` asks for)."""
    try:
        async with remote("run", url, "aether", args) as (connection, layout):
            client = await Client.connect(connection, prefix=layout.prefix, actor=actor_of(args))
            return await _run(args, data, client.submit, connection.nc, layout)
    except RemoteError as error:
        return fail(error)
    except AetherError as exc:
        say(exc, file=sys.stderr)
        return exits.of_error(exc)


async def _run(
    args: argparse.Namespace,
    data: bytes,
    submit: Callable[[bytes], Awaitable[str]],
    nc: NatsClient,
    layout: Layout,
) -> int:
    """Submit, print the run's progress until it ends (or `--timeout`), then its phase and outputs."""
    began = time.monotonic()
    try:
        run_id = await submit(data)
        if not args.json:
            say(f"run {run_id} submitted", flush=True)
        state = await follow(nc, layout, run_id, show=QUIET if args.json else LINES, timeout=args.timeout)
    except AetherError as exc:
        say(exc, file=sys.stderr)
        return exits.of_error(exc)
    return finish(state, as_json=args.json, seconds=time.monotonic() - began)
