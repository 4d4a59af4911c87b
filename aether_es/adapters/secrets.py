"""Secret providers: environment variables, a directory of files, and the first of several that has it.

Every provider raises `SecretNotFound` for a missing secret. Its message names the secret's name and key
(and where it was looked for), never a value, and no exception raised here carries secret content.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from pathlib import Path

from aether_es.ports.secrets import SecretNotFound, SecretProvider

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


class InvalidSecretName(SecretNotFound):
    """The name or key cannot be looked up safely (for files: it would leave the root directory)."""


def env_var_name(prefix: str, name: str, key: str) -> str:
    """`<prefix><NAME>_<KEY>`: name and key upper-cased, every character not a letter or digit as `_`."""
    return f"{prefix}{_NOT_ALNUM.sub('_', name).upper()}_{_NOT_ALNUM.sub('_', key).upper()}"


class EnvSecretProvider:
    """Secrets from environment variables.

    Secret `name`, key `key` is the variable `<prefix><NAME>_<KEY>`, where name and key are upper-cased
    and every character that is not an ASCII letter or digit becomes `_`. With the default prefix,
    `name: db-creds, key: password` is `AETHER_SECRET_DB_CREDS_PASSWORD`.

    The mapping is not injective (`a-b`/`c` and `a`/`b-c` both give `..._A_B_C`): choose names that do not
    collide. An empty variable is a secret whose value is the empty string. `environ` (default
    `os.environ`, read at each lookup) is for tests and embedding.
    """

    def __init__(self, prefix: str = "AETHER_SECRET_", environ: Mapping[str, str] | None = None) -> None:
        self.prefix = prefix
        self._environ = environ

    async def get(self, name: str, key: str) -> str:
        if not name or not key:
            raise InvalidSecretName(name, key, "empty name or key")
        var = env_var_name(self.prefix, name, key)
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(var)
        if value is None:
            raise SecretNotFound(name, key, f"environment variable {var} is not set")
        return value


def _check_component(what: str, value: str, name: str, key: str) -> None:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise InvalidSecretName(name, key, f"{what} must be a single file name, refusing it")


class FileSecretProvider:
    """Secrets from files: secret `name`, key `key` is the file `<root>/<name>/<key>`.

    The layout of a Kubernetes secret volume mounted per secret at `<root>/<name>`. One trailing newline
    (`\\n` or `\\r\\n`) is stripped; the rest of the file is the value, decoded as UTF-8. Names and keys
    must be single path components (no `/`, `\\`, `.` or `..`), and the resolved file must lie inside
    `root` (symlinks within the root are followed), so a reference cannot read files elsewhere.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    async def get(self, name: str, key: str) -> str:
        _check_component("secret name", name, name, key)
        _check_component("secret key", key, name, key)
        return await asyncio.to_thread(self._read, name, key)

    def _read(self, name: str, key: str) -> str:
        root = self.root.resolve()
        path = (root / name / key).resolve()
        if not path.is_relative_to(root):
            raise InvalidSecretName(name, key, f"it resolves outside {root}, refusing it")
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise SecretNotFound(name, key, f"no file {root / name / key}") from None
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = None
        if value is None:
            # Raised outside the handler so it has no __context__: a UnicodeDecodeError holds the whole content.
            raise ValueError(f"secret {name!r} key {key!r}: file is not valid UTF-8")
        if value.endswith("\r\n"):
            return value[:-2]
        if value.endswith("\n"):
            return value[:-1]
        return value


class CompositeSecretProvider:
    """The value from the first provider that has the secret; later providers are not asked.

    `SecretNotFound` (including a name one provider refuses) moves on to the next provider; any other
    error stops the lookup and propagates.
    """

    def __init__(self, *providers: SecretProvider) -> None:
        self.providers = providers

    async def get(self, name: str, key: str) -> str:
        for provider in self.providers:
            try:
                return await provider.get(name, key)
            except SecretNotFound:
                continue
        raise SecretNotFound(name, key, f"in none of {len(self.providers)} providers")
