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
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NatsConnection:
    """A core NATS client and its JetStream context, closed together."""

    nc: Client
    js: JetStreamContext

    async def close(self) -> None:
        """Flush what is buffered (acks are fire-and-forget publishes), then close.

        Not `drain()`: draining waits for every subscription's queue to empty, and a pull subscription whose
        fetch was abandoned at shutdown never empties, which only turns every shutdown into a timeout.
        """
        if self.nc.is_closed:
            return
        try:
            await self.nc.flush(timeout=1)
        except Exception as exc:
            log.debug("nats: flush before close failed (%r)", exc)
        await self.nc.close()


async def _log_error(exc: Exception) -> None:
    log.warning("nats: %s: %s", type(exc).__name__, exc)


async def _log_disconnected() -> None:
    log.info("nats: disconnected")


async def _log_reconnected() -> None:
    log.info("nats: reconnected")


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
    """Connect with service defaults (endless reconnects every 0.2 s) and `auth`; `options` override any of them."""
    settings: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.2,
        "connect_timeout": 2,
        "drain_timeout": 2,
        # Buffer big enough that one max-size message published during a reconnect still fits.
        "pending_size": 32 * 1024 * 1024,
        "error_cb": _log_error,
        "disconnected_cb": _log_disconnected,
        "reconnected_cb": _log_reconnected,
    }
    if auth is not None:
        settings.update(auth.connect_kwargs())
    settings.update(options)
    servers = [url] if isinstance(url, str) else list(url)
    nc = await nats.connect(servers, **settings)
    return NatsConnection(nc=nc, js=nc.jetstream())
