"""`aether-es serve`: run the engine, its request/reply API and event feed (and, optionally, workers).

Against `--nats URL` / $AETHER_NATS_URL, or an embedded nats-server under `--state-dir` when none is given.
It owns `--state-dir` while it runs and records its URL in `<state-dir>/nats.url` and as the user-level
default (`state_dir.user_url_file`), where the other commands find it; a second `serve` there is refused
(one server per store, `runtime.state_dir`). SIGINT and SIGTERM stop it cleanly: the API stops taking
requests, workers finish (or give back) what they hold, and the engine completes every decision in flight
before the connection closes; nothing acknowledged is lost.
Each run its engine ends as Failed, Error or Timeout is logged at WARNING with why (its failed tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from aether_es.api.service import start_api
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.failures import failure_reason
from aether_es.cli.python_options import add_allow_module
from aether_es.cli.remote import RemoteError, add_reconnect_timeout, add_remote_options, auth_options, fail
from aether_es.cli.secret_options import add_secret_options, secret_provider
from aether_es.cli.terminal import say
from aether_es.cluster.partitions import DEFAULT_PARTITIONS, SLOTS
from aether_es.http.address import parse_address
from aether_es.http.server import WebServer
from aether_es.http.tokens import TOKEN_ENV
from aether_es.model import phases as ph
from aether_es.projections.run_state import RunState
from aether_es.runtime.ownership import DEFAULT_LEASE_TTL
from aether_es.runtime.shutdown import StopSignals, within
from aether_es.runtime.stack import Stack, StackOptions, open_stack
from aether_es.runtime.state_dir import DEFAULT_STATE_DIR, publish_user_url, withdraw_user_url
from aether_es.runtime.supervisor import SupervisionFailed, Supervisor, supervised

log = logging.getLogger("aether_es.serve")

SHUTDOWN_GRACE = 5.0
"""Seconds a shutdown may take beyond `--drain-timeout` (the API, the feed, closing the connection)."""


def register(commands: Any) -> None:
    parser = commands.add_parser("serve", help=summary("serve"))
    add_remote_options(parser)
    add_secret_options(parser)
    add_allow_module(parser)
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="the embedded server's store and the URL file"
    )
    parser.add_argument("--workers", type=int, default=0, help="in-process worker slots (default 0: none)")
    parser.add_argument("--no-feed", action="store_true", help="do not publish the event feed")
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve the web UI there (a bare PORT listens on 127.0.0.1; default: no web UI)",
    )
    parser.add_argument(
        "--http-token",
        metavar="T",
        default=os.environ.get(TOKEN_ENV, ""),
        help=f"the token the web UI's actions (resume, cancel, retry) must send (default: ${TOKEN_ENV}; "
        "without one the UI only reads)",
    )
    parser.add_argument(
        "--replicas", type=int, default=1, help="JetStream replicas of the streams and buckets it creates (default 1)"
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        metavar="N",
        help=f"partitions the runs of a system it creates are spread over, from 1 to {SLOTS} "
        f"(default {DEFAULT_PARTITIONS}); an existing system keeps its own",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=DEFAULT_LEASE_TTL,
        metavar="S",
        help=f"seconds an engine's partitions stay with it without a renewal: how soon another engine takes "
        f"over from one that died (default {DEFAULT_LEASE_TTL:g})",
    )
    add_reconnect_timeout(
        parser, "gives up and exits 1; an embedded nats-server that dies is restarted, at most 3 times a minute"
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds SIGINT/SIGTERM waits for work in flight before it stops anyway, "
        f"plus {SHUTDOWN_GRACE:g} to close (default 30); a second signal stops at once",
    )
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    if args.workers < 0:
        say("aether: serve: --workers must be 0 or more", file=sys.stderr)
        return exits.INVALID
    if not 1 <= args.replicas <= 5:
        say("aether: serve: --replicas must be from 1 to 5", file=sys.stderr)
        return exits.INVALID
    if not 1 <= args.partitions <= SLOTS:
        say(f"aether: serve: --partitions must be from 1 to {SLOTS}", file=sys.stderr)
        return exits.INVALID
    if not args.lease_ttl >= 1:
        say("aether: serve: --lease-ttl must be 1 second or more", file=sys.stderr)
        return exits.INVALID
    if not args.reconnect_timeout > 0 or args.drain_timeout < 0:
        say("aether: serve: --reconnect-timeout must be positive, --drain-timeout 0 or more", file=sys.stderr)
        return exits.INVALID
    try:
        http = parse_address(args.http) if args.http is not None else None
    except ValueError as exc:
        say(f"aether: serve: {exc}", file=sys.stderr)
        return exits.INVALID
    try:
        auth = auth_options("serve", args)
        secrets = secret_provider("serve", args)
    except RemoteError as error:
        return fail(error)
    options = StackOptions(
        nats_url=args.nats,
        state_dir=args.state_dir,
        prefix=args.prefix,
        workers=args.workers,
        feed=not args.no_feed,
        feed_process=True,
        auth=auth,
        replicas=args.replicas,
        partitions=args.partitions,
        lease_ttl=args.lease_ttl,
        serving=True,
        secrets=secrets,
        allowed_modules=args.allow_modules,
    )
    try:
        stack = await open_stack(options)
    except Exception as exc:
        say(f"aether: serve: cannot start: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return exits.FAILED
    url = stack.url
    stack.engine.finished.append(_log_failure)
    publish_user_url(url, args.state_dir)
    signals = StopSignals(on_force=lambda: _kill_server(stack)).install()
    supervisor = Supervisor(stack.connection, stack.server, reconnect_timeout=args.reconnect_timeout)
    code = exits.OK
    api = None
    web = WebServer(stack, *http, token=args.http_token) if http is not None else None
    try:
        api = await start_api(stack)
        web_url = await _listen(web, args.http) if web is not None else ""
        if web_url is None:
            code = exits.FAILED
        else:
            say(f"aether-es serving on {url} (prefix {args.prefix}); stop with Ctrl-C", flush=True)
            if web_url:
                say(f"web UI on {web_url}", flush=True)
            if not await _serve_until_stopped(supervisor, signals.requested):
                code = exits.FAILED
            say("stopping ...", flush=True)
    finally:
        if web is not None:
            await within("stopping the web UI", web.stop(), SHUTDOWN_GRACE)
        if api is not None:
            await within("stopping the API", api.stop(), SHUTDOWN_GRACE)
        if not await within("stopping the engine and workers", stack.close(), args.drain_timeout + SHUTDOWN_GRACE):
            # What close did not reach: the connection and the server child. Exit 1: work may be unfinished.
            await within("closing the NATS connection", stack.connection.close(), 2.0)
            _kill_server(stack)
            code = exits.FAILED
        signals.remove()
        withdraw_user_url(url)
    say("stopped", flush=True)
    return code


async def _listen(web: WebServer, address: str) -> str | None:
    """The web UI's URL once it listens, or None after saying why it cannot."""
    try:
        return await web.start()
    except OSError as exc:
        say(f"aether: serve: --http {address}: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return None


async def _serve_until_stopped(supervisor: Supervisor, requested: asyncio.Event) -> bool:
    """Serve until a stop is requested (True) or the supervisor gives up (False, after a WARNING saying why)."""
    try:
        await supervised(supervisor, requested.wait())
    except SupervisionFailed as failure:
        log.warning("serve: %s; stopping", failure)
        return False
    return True


def _log_failure(state: RunState) -> None:
    """A run that ends in another phase than Succeeded (or Cancelled, which someone asked for), with why."""
    if state.phase not in (ph.SUCCEEDED, ph.CANCELLED):
        log.warning("run %s %s %s: %s", state.run_id, state.workflow.metadata.name, state.phase, failure_reason(state))


def _kill_server(stack: Stack) -> None:
    """Take the embedded nats-server and the feed process down with us: a shutdown cut short must not leave
    them running."""
    if stack.feed_process is not None:
        stack.feed_process.kill()
    if stack.server is not None:
        stack.server.kill()
