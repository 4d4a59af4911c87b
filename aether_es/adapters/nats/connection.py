"""Connecting to NATS the way a long-running service must: reconnect forever, quickly, and log it.

`NatsAuth` holds the standard NATS client options for a secured server (user/password, token, NKey seed,
credentials file, TLS with a CA and a client certificate), read from flags and the environment, checked up
front so a bad combination or an unreadable file is one clear line naming the option, not a failed handshake.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import ParseResult, urlparse

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

log = logging.getLogger(__name__)

DEFAULT_RECONNECT_TIMEOUT = 30.0
"""Seconds a long-running command keeps reconnecting to a lost server before it gives up and exits 1."""


class LogThrottle:
    """Logs each kind of warning at most once per `interval` seconds, counting the repeats it held back.

    A fault that repeats every few milliseconds (a refused write, a reconnect attempt) is then one line a
    while that still says how often it happened, not a flood that hides everything else.
    """

    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held and last is not None:
            self.logger.warning(f"{message} ({held} more like it in the last %.0f s)", *args, now - last)
        else:
            self.logger.warning(message, *args)


def seed_urls(url: str) -> list[str]:
    """The servers a comma-separated URL names, in order (one server when there is no comma)."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError(f"no NATS server URL in {url!r}")
    return servers


def display_url(url: ParseResult | str) -> str:
    """A server URL fit for a log line: scheme, host and port, never the credentials it may carry."""
    parsed = urlparse(url) if isinstance(url, str) else url
    host = parsed.hostname or ""
    return f"{parsed.scheme}://{host}:{parsed.port}" if parsed.port else f"{parsed.scheme}://{host}"


# What a lost connection raises into the error callback; the disconnect itself is the line worth logging.
_CONNECTION_LOSS = (nats.errors.UnexpectedEOF, nats.errors.StaleConnectionError, OSError, TimeoutError)


class ConnectionWatch:
    """The client's callbacks: a lost connection and its return are one WARNING each, naming the server.

    It also remembers since when the connection is down, so a supervisor can give up after a bounded time
    instead of reconnecting forever in silence. Errors raised by reconnect attempts are logged at DEBUG:
    the disconnect already said what is wrong, and they repeat every reconnect wait.
    """

    def __init__(self, servers: list[str]) -> None:
        self.url = ", ".join(display_url(server) for server in servers)
        self.down_since: float | None = None
        self.nc: Client | None = None
        self.established = False
        """Whether the first connection was made (errors before it are the caller's to report)."""
        self._throttle = LogThrottle(log)

    def attach(self, nc: Client) -> None:
        self.nc = nc
        if nc.connected_url is not None:
            self.url = display_url(nc.connected_url)

    async def error(self, exc: Exception) -> None:
        """Not before the first connection: a command reports a failed connect in its own one line."""
        reconnecting = self.nc is not None and self.nc.is_reconnecting
        connecting = not self.established
        if connecting or reconnecting or self.down_since is not None or isinstance(exc, _CONNECTION_LOSS):
            log.debug("nats: %s: %r", self.url, exc)
            return
        self._throttle.warning(type(exc).__name__, "nats: %s: %s: %s", self.url, type(exc).__name__, exc)

    async def disconnected(self) -> None:
        if self.nc is None or self.nc.is_closed:
            log.debug("nats: connection to %s closed", self.url)
            return
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("nats: disconnected from %s; reconnecting", self.url)

    async def reconnected(self) -> None:
        down = 0.0 if self.down_since is None else time.monotonic() - self.down_since
        self.down_since = None
        if self.nc is not None and self.nc.connected_url is not None:
            self.url = display_url(self.nc.connected_url)
        log.warning("nats: reconnected to %s after %.1f s", self.url, down)


@dataclass(slots=True)
class NatsConnection:
    """A core NATS client and its JetStream context, closed together."""

    nc: Client
    js: JetStreamContext
    watch: ConnectionWatch = field(default_factory=lambda: ConnectionWatch([]))

    @property
    def url(self) -> str:
        """The server this connection is (or was last) connected to, without credentials."""
        return self.watch.url

    @property
    def down_for(self) -> float:
        """Seconds since the connection was lost, 0 while it is up."""
        since = self.watch.down_since
        return 0.0 if since is None else time.monotonic() - since

    async def close(self) -> None:
        """Flush what is buffered (acks are fire-and-forget publishes), then close.

        Not `drain()`: draining waits for every subscription's queue to empty, and a pull subscription whose
        fetch was abandoned at shutdown never empties, which only turns every shutdown into a timeout.
        """
        if self.nc.is_closed:
            return
        if self.nc.is_connected:
            try:
                await self.nc.flush(timeout=1)
            except Exception as exc:
                log.debug("nats: flush before close failed (%r)", exc)
        try:
            await self.nc.close()
        except Exception as exc:  # a lost connection fails to close cleanly; it is closed all the same
            log.debug("nats: close failed (%r)", exc)


class ConnectOptionError(ValueError):
    """A NATS connection option is missing a partner, conflicts with another, or names an unusable file."""


@dataclass(frozen=True, slots=True)
class NatsOption:
    """One connection option: its `NatsAuth` field, command-line flag and environment variable."""

    field: str
    flag: str
    env: str
    help: str

    @property
    def label(self) -> str:
        """How errors name the option, whichever of the two it came from."""
        return f"{self.flag} (${self.env})"


NATS_OPTIONS: tuple[NatsOption, ...] = (
    NatsOption("user", "--user", "AETHER_NATS_USER", "NATS user name (with --password)"),
    NatsOption("password", "--password", "AETHER_NATS_PASSWORD", "NATS password (with --user)"),
    NatsOption("token", "--token", "AETHER_NATS_TOKEN", "NATS authentication token"),
    NatsOption("nkey", "--nkey", "AETHER_NATS_NKEY", "file holding an NKey user seed (SU...)"),
    NatsOption("creds", "--creds", "AETHER_NATS_CREDS", "NATS credentials file (user JWT and seed, .creds)"),
    NatsOption("tls_ca", "--tls-ca", "AETHER_NATS_TLS_CA", "PEM file of the CA that signed the server certificate"),
    NatsOption("tls_cert", "--tls-cert", "AETHER_NATS_TLS_CERT", "PEM client certificate (with --tls-key)"),
    NatsOption("tls_key", "--tls-key", "AETHER_NATS_TLS_KEY", "PEM private key of the client certificate"),
)
_BY_FIELD = {option.field: option for option in NATS_OPTIONS}
_CREDENTIALS = ("user", "password", "token", "nkey", "creds")
_FILES = ("nkey", "creds", "tls_ca", "tls_cert", "tls_key")


def _label(field: str) -> str:
    return _BY_FIELD[field].label


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """Credentials and TLS settings for a connection; everything unset means an open, plain server."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    nkey: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NatsAuth:
        """The options set in the environment (`AETHER_NATS_*`; empty values count as unset), checked."""
        return cls.resolve({}, env)

    @classmethod
    def resolve(cls, flags: Mapping[str, str | None], env: Mapping[str, str] | None = None) -> NatsAuth:
        """Flags (by field name) over the environment, checked.

        Credentials are taken as a group: any credential flag replaces every credential from the environment,
        so `--token` on the command line is not mixed with a user name left in the shell. TLS files are taken
        one by one (a CA from the environment and a client certificate from flags is a sensible mix).
        """
        environ = os.environ if env is None else env
        from_env = {o.field: environ.get(o.env) or None for o in NATS_OPTIONS}
        given = {name: value for name, value in flags.items() if value}
        if any(name in given for name in _CREDENTIALS):
            from_env.update(dict.fromkeys(_CREDENTIALS))
        auth = cls(**{**from_env, **given})
        auth.check()
        return auth

    @property
    def configured(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def check(self) -> None:
        """Raise `ConnectOptionError` naming the option at fault, before any connection is tried."""
        methods = [
            name
            for name, used in (
                ("user", self.user or self.password),
                ("token", self.token),
                ("nkey", self.nkey),
                ("creds", self.creds),
            )
            if used
        ]
        if len(methods) > 1:
            raise ConnectOptionError(
                f"{_label(methods[0])} and {_label(methods[1])} are two ways to authenticate: use only one"
            )
        if self.password and not self.user:
            raise ConnectOptionError(f"{_label('password')} needs {_label('user')}")
        if self.user and not self.password:
            raise ConnectOptionError(f"{_label('user')} needs {_label('password')}")
        if bool(self.tls_cert) != bool(self.tls_key):
            have, missing = ("tls_cert", "tls_key") if self.tls_cert else ("tls_key", "tls_cert")
            raise ConnectOptionError(f"{_label(have)} needs {_label(missing)}")
        for name in _FILES:
            path = getattr(self, name)
            if path:
                try:
                    with open(path, "rb") as handle:
                        handle.read(1)
                except OSError as exc:
                    raise ConnectOptionError(f"{_label(name)}: cannot read {path}: {exc.strerror or exc}") from None
        if (self.nkey or self.creds) and importlib.util.find_spec("nkeys") is None:
            raise ConnectOptionError(
                f"{_label('nkey' if self.nkey else 'creds')} needs the nkeys package: pip install 'nats-py[nkeys]'"
            )
        if self.tls_ca or self.tls_cert:
            self.ssl_context()

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context trusting `tls_ca` (else the system's CAs) and presenting the client certificate."""
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
        except (ssl.SSLError, OSError) as exc:
            raise ConnectOptionError(f"{_label('tls_ca')}: {self.tls_ca} is not a PEM CA certificate ({exc})") from None
        if self.tls_cert and self.tls_key:
            try:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            except (ssl.SSLError, OSError) as exc:
                raise ConnectOptionError(
                    f"{_label('tls_cert')} {self.tls_cert} and {_label('tls_key')} {self.tls_key} "
                    f"are not a PEM certificate and its private key ({exc})"
                ) from None
        return context

    def connect_kwargs(self) -> dict[str, Any]:
        """The `nats.connect` keyword arguments these options stand for."""
        kwargs: dict[str, Any] = {}
        if self.user:
            kwargs.update(user=self.user, password=self.password)
        if self.token:
            kwargs["token"] = self.token
        if self.nkey:
            kwargs["nkeys_seed"] = self.nkey
        if self.creds:
            kwargs["user_credentials"] = self.creds
        if self.tls_ca or self.tls_cert:
            kwargs["tls"] = self.ssl_context()
        return kwargs


async def connect(
    url: str | list[str], *, name: str = "aether-es", auth: NatsAuth | None = None, **options: Any
) -> NatsConnection:
    """Connect with service defaults (endless reconnects every 0.2 s) and `auth`; `options` override any of them.

    `url` may name several servers of one cluster, comma-separated (`nats://a:4222,nats://b:4222`) as NATS
    clients take them: the client connects to one and fails over to the others, and to any the cluster
    advertises. Endless: giving up is the caller's decision (`NatsConnection.down_for`), since only it knows
    how long its work can wait.
    """
    servers = seed_urls(url) if isinstance(url, str) else list(url)
    watch = ConnectionWatch(servers)
    settings: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.2,
        "connect_timeout": 2,
        "drain_timeout": 2,
        # Buffer big enough that one max-size message published during a reconnect still fits.
        "pending_size": 32 * 1024 * 1024,
        "error_cb": watch.error,
        "disconnected_cb": watch.disconnected,
        "reconnected_cb": watch.reconnected,
    }
    if auth is not None:
        settings.update(auth.connect_kwargs())
    settings.update(options)
    nc = Client()
    watch.attach(nc)
    await nc.connect(servers, **settings)
    watch.attach(nc)
    watch.established = True
    return NatsConnection(nc=nc, js=nc.jetstream(), watch=watch)
