"""Where the web UI listens: `HOST:PORT`, or a bare `PORT` on the loopback interface."""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"


def parse_address(text: str, flag: str = "--http") -> tuple[str, int]:
    """(host, port) of `text`; ValueError naming `flag` and what is wrong. Port 0 takes any free port."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{flag} {text!r}: expected HOST:PORT or PORT, with PORT from 0 to 65535")
    return host, int(port)
