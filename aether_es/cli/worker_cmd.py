"""`aether-es worker`: serve executor types to a running system, from the built-ins and imported SDK modules.

It registers its types (with their input schemas) in the worker registry, pulls from each type's consumer
and runs up to `--concurrency` tasks at once. SIGTERM or SIGINT drains it: it stops fetching, unregisters,
gives held tasks `--drain-timeout` seconds to finish and hands back the rest for another worker, then
exits 0. A worker killed outright loses nothing either: its unacked tasks are redelivered after the
tasks' ack wait. Exit 1 when the server cannot be reached, or is lost for longer than `--reconnect-timeout`
(after a WARNING saying so), 2 for bad flags or modules.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.layout import DEFAULT_ACK_WAIT, Layout
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.python_options import add_allow_module
from aether_es.cli.remote import RemoteError, add_reconnect_timeout, add_remote_options, auth_options, fail, no_url
from aether_es.cli.terminal import say
from aether_es.http.address import parse_address
from aether_es.observability.metrics import serve_metrics
from aether_es.runtime.shutdown import within
from aether_es.runtime.stack import default_executors
from aether_es.runtime.state_dir import discover_url
from aether_es.runtime.supervisor import Supervisor
from aether_es.worker import registered, run
from aether_es.worker.executor import Executor
from aether_es.worker.pool import WorkerPool

CONNECT_TIMEOUT = 10.0

log = logging.getLogger("aether_es.worker")


class WorkerSetupError(Exception):
    """A flag or module the worker cannot start with."""


def register(commands: Any) -> None:
    parser = commands.add_parser("worker", help=summary("worker"))
    parser.add_argument(
        "--executors",
        required=True,
        metavar="TYPES",
        help="comma-separated executor types to serve: built-ins or types registered by --import modules",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="tasks run at once (default 4)")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module name or .py file whose @executor functions to serve (repeatable)",
    )
    add_allow_module(parser, "the --import modules only")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds held tasks may take to finish on SIGTERM before they are handed back (default 30)",
    )
    parser.add_argument(
        "--task-ack-wait",
        type=float,
        default=DEFAULT_ACK_WAIT,
        help="the system's task ack wait in seconds, as its engine was started with (default %(default)s)",
    )
    add_reconnect_timeout(parser, "drains and exits 1; a second SIGTERM/SIGINT stops at once")
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve this worker's Prometheus metrics at http://HOST:PORT/metrics (a bare PORT: on 127.0.0.1)",
    )
    parser.add_argument("--worker-id", help="the id to register under (default: host-pid-random)")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag to register (repeatable)"
    )
    add_remote_options(parser)
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    try:
        executors = choose_executors(args.executors, args.imports, args.allow_modules)
        tags = parse_tags(args.tag)
        check_numbers(args)
        Layout(prefix=args.prefix)
        metrics_at = parse_address(args.metrics, "--metrics") if args.metrics else None
    except (WorkerSetupError, ValueError) as exc:
        say(f"aether: worker: {exc}", file=sys.stderr)
        return exits.INVALID
    found = discover_url(args.nats)
    if found is None:
        say(no_url("worker"), file=sys.stderr)
        return exits.INVALID
    url, where = found
    try:
        auth = auth_options("worker", args)
    except RemoteError as error:
        return fail(error)
    try:
        # Reconnects are endless once connected; the first connection gets CONNECT_TIMEOUT to succeed.
        connection = await asyncio.wait_for(connect(url, name="aether-es-worker", auth=auth), CONNECT_TIMEOUT)
    except Exception as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        say(f"aether: worker: cannot connect to {url}: {reason} (the URL from {where})", file=sys.stderr)
        return exits.FAILED

    try:
        exporter = serve_metrics(*metrics_at) if metrics_at is not None else None
    except OSError as exc:
        say(f"aether: worker: --metrics {args.metrics}: {exc.strerror or exc}", file=sys.stderr)
        await within("closing the NATS connection", connection.close(), 5.0)
        return exits.FAILED

    async def started(pool: WorkerPool) -> None:
        say(f"worker {pool.worker_id} serving {', '.join(executors)} on {url}", flush=True)
        if exporter is not None and metrics_at is not None:
            say(f"metrics on http://{metrics_at[0]}:{exporter.server_port}/metrics", flush=True)

    stop = asyncio.Event()
    watching = asyncio.create_task(_stop_when_lost(connection, args.reconnect_timeout, stop))
    try:
        await run(
            executors,
            nats=connection,
            concurrency=args.concurrency,
            prefix=args.prefix,
            worker_id=args.worker_id,
            tags=tags,
            drain_timeout=args.drain_timeout,
            task_ack_wait=args.task_ack_wait,
            on_started=started,
            stop=stop,
        )
    finally:
        lost = watching.done()
        watching.cancel()
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        await within("closing the NATS connection", connection.close(), 5.0)
    say("worker stopped", flush=True)
    return exits.FAILED if lost else exits.OK


async def _stop_when_lost(connection: NatsConnection, reconnect_timeout: float, stop: asyncio.Event) -> None:
    """Set `stop` once the connection has been down for `reconnect_timeout` seconds (a WARNING says so)."""
    try:
        await Supervisor(connection, reconnect_timeout=reconnect_timeout).run()
    except Exception as exc:
        log.warning("worker: %s; draining and exiting", exc)
        stop.set()


def choose_executors(types: str, imports: list[str], allow_modules: list[str]) -> dict[str, Executor]:
    """The executors named in `types`, from the built-ins and what the imported modules registered.

    The `python` executor may call functions of the `--allow-module` modules and of the `--import` ones
    (the operator chose to load them into the worker), nothing else.
    """
    allowed = [*allow_modules, *(import_module(module) for module in imports)]
    available: dict[str, Executor] = {**default_executors(allowed), **registered()}
    chosen: dict[str, Executor] = {}
    for name in (t.strip() for t in types.split(",")):
        if not name:
            continue
        if name not in available:
            known = ", ".join(sorted(available))
            raise WorkerSetupError(f'--executors: unknown executor type "{name}" (known: {known})')
        chosen[name] = available[name]
    if not chosen:
        raise WorkerSetupError("--executors: name at least one executor type")
    return chosen


def import_module(spec: str) -> str:
    """Import a module by name (from the current directory too) or a Python file by path; its module name."""
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.is_file():
            if not path.is_file():
                raise WorkerSetupError(f"--import: no such file: {spec}")
            loaded = importlib.util.spec_from_file_location(path.stem, path)
            if loaded is None or loaded.loader is None:
                raise WorkerSetupError(f"--import: cannot load {spec}")
            module = importlib.util.module_from_spec(loaded)
            sys.modules[path.stem] = module
            loaded.loader.exec_module(module)
            return path.stem
        if "" not in sys.path:
            sys.path.insert(0, "")
        importlib.import_module(spec)
        return spec
    except WorkerSetupError:
        raise
    except Exception as exc:
        raise WorkerSetupError(f"--import {spec}: {type(exc).__name__}: {exc}") from None


def parse_tags(tags: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise WorkerSetupError(f"--tag: expected KEY=VALUE, got {tag!r}")
        out[key] = value
    return out


def check_numbers(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise WorkerSetupError("--concurrency must be at least 1")
    if args.drain_timeout < 0:
        raise WorkerSetupError("--drain-timeout must be 0 or more")
    if not args.task_ack_wait > 0:
        raise WorkerSetupError("--task-ack-wait must be positive")
    if not args.reconnect_timeout > 0:
        raise WorkerSetupError("--reconnect-timeout must be positive")
