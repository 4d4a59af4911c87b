"""The state folder (`.aether/` by default): who owns it, where its store is, where its system answers.

One process at a time owns a folder: the one that serves its store. It holds an exclusive `flock` on
`<state-dir>/nats.lock` for its whole life and records its pid and URL there, and the URL once more in
`<state-dir>/nats.url` for scripts. The lock, not the files, says whether the owner is alive: the kernel
drops it when the owner dies, even on `kill -9`, so a record left behind is stale by construction and the
next owner overwrites it. Everyone else uses the owner's system instead of starting a second server.

Layout: `nats/` the JetStream store, `nats-run/` the server's config, log and pid files (beside the store,
see `adapters.nats.server`), `nats.lock`, `nats.url`, and the workers' `artifacts/` and `work/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("aether_es.state_dir")

STORE_DIR = "nats"
LOCK_FILE = "nats.lock"
URL_FILE = "nats.url"
NATS_URL_ENV = "AETHER_NATS_URL"
DEFAULT_STATE_DIR = Path(".aether")
STARTING_WAIT = 10.0
"""Seconds to wait for an owner that holds the folder but does not answer yet (it is still starting)."""
_RECORD_WAIT = 1.0
"""Seconds to wait for a new owner to write its pid after taking the lock."""


class StateDirBusy(RuntimeError):
    """Another live process owns the folder; the message names the folder and its pid, on one line."""


@dataclass(frozen=True)
class Owner:
    """The live owner of a folder: its pid and the URL it serves on ("" until its server is up)."""

    pid: int
    url: str


def store_dir(state_dir: Path) -> Path:
    """Where the folder's JetStream store lives."""
    return state_dir / STORE_DIR


class OwnerLock:
    """The exclusive hold on a folder; `publish` records the URL, `release` gives the folder up."""

    def __init__(self, state_dir: Path, fd: int) -> None:
        self.state_dir = state_dir
        self._fd: int | None = fd
        self._url = ""

    @classmethod
    def acquire(cls, state_dir: Path) -> OwnerLock | None:
        """Take the folder, or None while another live process holds it. The fd is close-on-exec, so no child
        (the nats-server least of all) keeps the folder locked after its owner is gone."""
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # Probes by `owner` hold a shared lock for a moment: a busy answer is only believed once it persists.
        deadline = time.monotonic() + 0.2
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(0.01)
        stale = _parse(os.pread(fd, 4096, 0))
        if stale is not None:
            log.info("%s: replacing the record of pid %d, which is gone", state_dir, stale.pid)
        lock = cls(state_dir, fd)
        lock._write(Owner(os.getpid(), ""))
        return lock

    @property
    def fd(self) -> int | None:
        return self._fd

    def publish(self, url: str) -> None:
        """Record the URL this folder's system answers on, for the other commands to find."""
        self._url = url
        self._write(Owner(os.getpid(), url))
        path = self.state_dir / URL_FILE
        partial = path.with_name(f".{URL_FILE}.{os.getpid()}")
        partial.write_text(url + "\n")
        partial.replace(path)

    def release(self) -> None:
        """Give the folder up: remove our URL file and record, then unlock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if self._url and (self.state_dir / URL_FILE).read_text().strip() == self._url:
                (self.state_dir / URL_FILE).unlink()
        os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor of the lock releases it

    def _write(self, owner: Owner) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps({"pid": owner.pid, "url": owner.url}).encode(), 0)


def owner(state_dir: Path) -> Owner | None:
    """The live owner of the folder, or None when no process holds it (whatever its files still say)."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: the owner is alive
        else:
            return None
        deadline = time.monotonic() + _RECORD_WAIT
        while (record := _parse(os.pread(fd, 4096, 0))) is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the owner has the lock but has not written its pid yet
        return record or Owner(0, "")
    finally:
        os.close(fd)


def resolve_url(explicit: str | None) -> str | None:
    """An explicit URL, else $AETHER_NATS_URL, else None (meaning: start an embedded server)."""
    return explicit or os.environ.get(NATS_URL_ENV) or None


def served_url(state_dir: Path) -> str | None:
    """The URL the live owner of the folder serves on, if there is one and its server is up."""
    current = owner(state_dir)
    if current is None or not current.url:
        return None
    return current.url


USER_DIR = "aether-es"
"""The user-level folder under `$XDG_CONFIG_HOME` (default `~/.config`): `serve` records its URL there too."""


def user_url_file() -> Path:
    """`$XDG_CONFIG_HOME/aether-es/nats.url`, or `~/.config/aether-es/nats.url`."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / USER_DIR / URL_FILE


def discover_url(explicit: str | None) -> tuple[str, str] | None:
    """The URL a command reaches the system by, and where it was found, or None. In order: `explicit`
    (--nats), $AETHER_NATS_URL, the live server of the nearest `.aether/` from the current folder up, the
    user-level default `serve` last recorded (`user_url_file`)."""
    if explicit:
        return explicit, "--nats"
    if os.environ.get(NATS_URL_ENV):
        return os.environ[NATS_URL_ENV], f"${NATS_URL_ENV}"
    here = Path.cwd()
    for folder in (here, *here.parents):
        url = served_url(folder / DEFAULT_STATE_DIR)
        if url is not None:
            return url, str(folder / DEFAULT_STATE_DIR / URL_FILE)
    recorded = user_url_file()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        url, _, served_from = recorded.read_text().partition("\n")
        if url.strip() and (not served_from.strip() or owner(Path(served_from.strip())) is not None):
            return url.strip(), str(recorded)
    return None


def publish_user_url(url: str, state_dir: Path) -> None:
    """Record `url` as the user-level default, with the state folder of the `serve` that records it: the URL
    counts only while that folder has a live owner, so a `serve` killed with -9 leaves no stale default (a
    URL written there by hand, alone on its line, always counts). Written whole or not at all; a folder that
    cannot be written is logged (the commands still find the system through `.aether/` or --nats)."""
    path = user_url_file()
    partial = path.with_name(f".{URL_FILE}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(f"{url}\n{state_dir.resolve()}\n")
        partial.replace(path)
    except OSError as exc:
        log.warning("cannot record the URL in %s: %s", path, exc.strerror or exc)
        with contextlib.suppress(OSError):
            partial.unlink()


def withdraw_user_url(url: str) -> None:
    """Remove the user-level default if it still names `url` (a later `serve` may have replaced it)."""
    path = user_url_file()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if path.read_text().partition("\n")[0].strip() == url:
            path.unlink()


async def claim_or_join(state_dir: Path, *, join: bool, wait: float = STARTING_WAIT) -> OwnerLock | str:
    """Become the folder's owner (an `OwnerLock`: start its server, `publish`, `release`), or with `join` get
    the URL of the live owner's system (`served_system`).

    Raises `StateDirBusy` when the folder is owned and `join` is false, or when its owner does not answer
    within `wait` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        lock = OwnerLock.acquire(state_dir)
        if lock is not None:
            return lock
        if not join:
            current = owner(state_dir) or Owner(0, "")
            on = f" on {current.url}" if current.url else ""
            raise StateDirBusy(
                f"{_name(state_dir)} is already served by pid {_pid(current)}{on}; use that system, or stop it first"
            )
        url = await served_system(state_dir, max(0.0, deadline - time.monotonic()))
        if url is not None:
            return url
        # the owner left meanwhile: take the folder


async def served_system(state_dir: Path, wait: float = STARTING_WAIT) -> str | None:
    """The URL of the system the live owner of the folder serves, once it answers; None when nobody owns it.

    Raises `StateDirBusy` naming the folder and the owner's pid when it does not answer within `wait` seconds
    (it is still starting, or hangs).
    """
    deadline = time.monotonic() + wait
    while (current := owner(state_dir)) is not None:
        if current.url and await answers(current.url):
            log.info("%s: using the system pid %d serves on %s", state_dir, current.pid, current.url)
            return current.url
        if time.monotonic() >= deadline:
            where = f"at {current.url} " if current.url else ""
            raise StateDirBusy(
                f"{_name(state_dir)} is held by pid {_pid(current)}, whose server {where}does not answer; "
                "try again once it is up, or pass --nats URL"
            )
        await asyncio.sleep(0.1)
    return None


async def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a NATS server answers at `url`: it greets a new connection with its INFO line."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        return False
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout)
    except (OSError, TimeoutError):
        return False
    try:
        return (await asyncio.wait_for(reader.readline(), timeout)).startswith(b"INFO ")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _parse(data: bytes) -> Owner | None:
    try:
        record = json.loads(data)
        return Owner(int(record["pid"]), str(record.get("url") or ""))
    except (ValueError, KeyError, TypeError):
        return None


def _name(state_dir: Path) -> str:
    return str(state_dir.resolve())


def _pid(current: Owner) -> str:
    return str(current.pid) if current.pid else "(unknown)"
