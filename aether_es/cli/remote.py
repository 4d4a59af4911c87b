"""Reaching a running system from a one-shot command: its NATS URL, a fail-fast connection, its layout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.layout import Layout
from aether_es.runtime.stack import NATS_URL_ENV, resolve_url

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


@asynccontextmanager
async def remote(command: str, nats: str | None, prefix: str) -> AsyncIterator[tuple[NatsConnection, Layout]]:
    url = resolve_url(nats)
    if url is None:
        raise RemoteError(
            f"aether: {command}: no NATS URL: pass --nats URL or set ${NATS_URL_ENV} to the running system's server",
            EXIT_INVALID,
        )
    try:
        layout = Layout(prefix=prefix)
    except ValueError as exc:
        raise RemoteError(f"aether: {command}: {exc}", EXIT_INVALID) from None
    try:
        # One retry, no reconnects: a one-shot command should fail fast (0 attempts means "forever" in nats-py).
        connection = await connect(url, name=f"aether-es-{command}", allow_reconnect=False, max_reconnect_attempts=1)
    except Exception as exc:
        raise RemoteError(
            f"aether: {command}: cannot connect to {url}: {str(exc) or type(exc).__name__}", EXIT_UNREACHABLE
        ) from None
    try:
        yield connection, layout
    finally:
        await connection.close()


def fail(error: RemoteError) -> int:
    print(error, file=sys.stderr)
    return error.code
