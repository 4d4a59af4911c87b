"""Reaching a running system from a one-shot command: its NATS URL, a fail-fast connection, its layout."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aether_es.adapters.nats.connection import (
    DEFAULT_RECONNECT_TIMEOUT,
    NATS_OPTIONS,
    ConnectOptionError,
    NatsAuth,
    NatsConnection,
    connect,
)
from aether_es.adapters.nats.layout import Layout
from aether_es.cli.terminal import say
from aether_es.runtime.state_dir import DEFAULT_STATE_DIR, NATS_URL_ENV, URL_FILE, discover_url, user_url_file

EXIT_UNREACHABLE = 1
EXIT_INVALID = 2


class RemoteError(Exception):
    """The system cannot be reached; `code` is the exit code to end with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats", help=f"NATS URL of the running system (default: ${NATS_URL_ENV})")
    parser.add_argument("--prefix", default="aether", help="the system's layout prefix (default: aether)")
    add_auth_options(parser)


def add_reconnect_timeout(parser: argparse.ArgumentParser, then: str) -> None:
    """`--reconnect-timeout S` of the commands that keep a connection for long: after S seconds without one,
    they do `then` rather than reconnect for ever in silence."""
    parser.add_argument(
        "--reconnect-timeout",
        type=float,
        default=DEFAULT_RECONNECT_TIMEOUT,
        metavar="S",
        help=f"seconds without a NATS connection before it {then} (default {DEFAULT_RECONNECT_TIMEOUT:g})",
    )


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """The standard NATS credential and TLS flags; each defaults to its `AETHER_NATS_*` variable."""
    group = parser.add_argument_group("NATS authentication and TLS (flags win over the environment)")
    for option in NATS_OPTIONS:
        group.add_argument(
            option.flag, dest=f"nats_{option.field}", metavar="VALUE", help=f"{option.help} (${option.env})"
        )


def auth_options(command: str, args: argparse.Namespace) -> NatsAuth:
    """The connection options of `args` over the environment; a bad one is a `RemoteError` naming it."""
    try:
        return NatsAuth.resolve({o.field: getattr(args, f"nats_{o.field}", None) for o in NATS_OPTIONS})
    except ConnectOptionError as exc:
        raise RemoteError(f"aether: {command}: {exc}", EXIT_INVALID) from None


ACTOR_ENV = "AETHER_ACTOR"


def add_actor_options(parser: argparse.ArgumentParser) -> None:
    """`--actor` and `--reason` for a command that changes something: recorded with its events."""
    parser.add_argument("--actor", help=f"who issues it (default: ${ACTOR_ENV}, the NATS user, or your login)")
    parser.add_argument("--reason", default="", help="why, recorded with the command in the run's history")


def actor_of(args: argparse.Namespace) -> str:
    """Who issues a command: `--actor`, else $AETHER_ACTOR, else the NATS user name, else the login name."""
    explicit = getattr(args, "actor", None) or os.environ.get(ACTOR_ENV) or getattr(args, "nats_user", None)
    if explicit:
        return str(explicit)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


@asynccontextmanager
async def remote(
    command: str, nats: str | None, prefix: str, args: argparse.Namespace | None = None
) -> AsyncIterator[tuple[NatsConnection, Layout]]:
    """Connect to the running system; `args` carries the flags of `add_remote_options` (else the environment's)."""
    found = discover_url(nats)
    if found is None:
        raise RemoteError(no_url(command), EXIT_INVALID)
    url, where = found
    try:
        layout = Layout(prefix=prefix)
    except ValueError as exc:
        raise RemoteError(f"aether: {command}: {exc}", EXIT_INVALID) from None
    auth = auth_options(command, args if args is not None else argparse.Namespace())
    try:
        # One retry, no reconnects: a one-shot command should fail fast (0 attempts means "forever" in nats-py).
        connection = await connect(
            url, name=f"aether-es-{command}", auth=auth, allow_reconnect=False, max_reconnect_attempts=1
        )
    except Exception as exc:
        raise RemoteError(
            f"aether: {command}: cannot connect to {url}: {str(exc) or type(exc).__name__} (the URL from {where})",
            EXIT_UNREACHABLE,
        ) from None
    try:
        yield connection, layout
    finally:
        await connection.close()


def no_url(command: str) -> str:
    """What a command that found no URL says: where it looked, in order."""
    return (
        f"aether: {command}: no NATS URL: pass --nats URL, set ${NATS_URL_ENV}, run `aether-es serve` in this folder "
        f"or one above (it writes {DEFAULT_STATE_DIR / URL_FILE}), or anywhere (it records {user_url_file()})"
    )


def fail(error: RemoteError) -> int:
    say(error, file=sys.stderr)
    return error.code
