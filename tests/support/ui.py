"""The web UI of a served system, as the UI tests reach it."""

from __future__ import annotations

from dataclasses import dataclass

TOKEN = "ui-test-token"
"""The token the UI tests' system takes actions with."""


@dataclass(frozen=True)
class Ui:
    """`serve --http` on an embedded server: the web UI's base URL and the NATS URL the CLI takes."""

    web: str
    nats: str
