"""Where a command that runs an engine (`serve`, `run`) reads secrets from: flags, or their environment
variables. By default from `AETHER_SECRET_<NAME>_<KEY>` variables; with a folder, from its files first."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from aether_es.adapters.secrets import CompositeSecretProvider, EnvSecretProvider, FileSecretProvider
from aether_es.cli import exits
from aether_es.cli.remote import RemoteError
from aether_es.ports.secrets import SecretProvider

SECRETS_DIR_ENV = "AETHER_SECRETS_DIR"
SECRETS_PREFIX_ENV = "AETHER_SECRETS_ENV_PREFIX"
DEFAULT_PREFIX = "AETHER_SECRET_"


def add_secret_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"read secret NAME key KEY from the file DIR/NAME/KEY first (${SECRETS_DIR_ENV})",
    )
    parser.add_argument(
        "--secrets-env-prefix",
        default=None,
        metavar="PREFIX",
        help=f"read secret NAME key KEY from the variable <PREFIX><NAME>_<KEY> (default {DEFAULT_PREFIX}; "
        f"'' reads none; ${SECRETS_PREFIX_ENV})",
    )


def secret_provider(command: str, args: argparse.Namespace) -> SecretProvider | None:
    """The providers the flags (or their variables) ask for; a folder that is not one is refused by name."""
    folder = args.secrets_dir or os.environ.get(SECRETS_DIR_ENV) or None
    prefix = args.secrets_env_prefix
    if prefix is None:
        prefix = os.environ.get(SECRETS_PREFIX_ENV, DEFAULT_PREFIX)
    providers: list[SecretProvider] = []
    if folder is not None:
        if not Path(folder).is_dir():
            raise RemoteError(
                f"aether: {command}: --secrets-dir (${SECRETS_DIR_ENV}) {folder} is not a folder", exits.INVALID
            )
        providers.append(FileSecretProvider(folder))
    if prefix:
        providers.append(EnvSecretProvider(prefix))
    if len(providers) > 1:
        return CompositeSecretProvider(*providers)
    return providers[0] if providers else None
