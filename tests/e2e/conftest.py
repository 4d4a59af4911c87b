"""A served system shared by the tests of a module that drive it with the `aether-es` command."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from support.cli import Served, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`aether-es serve --workers 4` on an embedded server, stopped with SIGTERM after the module."""
    state = tmp_path_factory.mktemp("serve") / ".aether"
    process, url = serve(state, "--workers", "4")
    try:
        yield Served(process, url, state)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
