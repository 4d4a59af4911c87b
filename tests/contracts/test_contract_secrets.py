"""Every secret provider passes the same contract: a stored secret is found, a missing one raises
SecretNotFound naming the secret and carrying no stored value anywhere in the exception."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from aether_es.adapters.secrets import (
    CompositeSecretProvider,
    EnvSecretProvider,
    FileSecretProvider,
    InvalidSecretName,
    env_var_name,
)
from aether_es.ports.secrets import SecretNotFound, SecretProvider

SECRETS = {
    ("db-creds", "password"): "hunter2-Zq9!",
    ("db-creds", "user"): "app_user_7731",
    ("api.token", "value"): "tok en with spaces\nand a second line",
    ("empty", "value"): "",
}
VALUES = [v for v in SECRETS.values() if v]


def _env(prefix: str = "AETHER_SECRET_") -> dict[str, str]:
    return {env_var_name(prefix, name, key): value for (name, key), value in SECRETS.items()}


def _files(root: Path) -> Path:
    for (name, key), value in SECRETS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / key).write_text(value + "\n")
    return root


PROVIDERS: dict[str, Callable[[Path], SecretProvider]] = {
    "env": lambda tmp: EnvSecretProvider(environ=_env()),
    "env-custom-prefix": lambda tmp: EnvSecretProvider(prefix="MY_", environ=_env("MY_")),
    "file": lambda tmp: FileSecretProvider(_files(tmp / "secrets")),
    "composite-env-last": lambda tmp: CompositeSecretProvider(
        EnvSecretProvider(environ={}), FileSecretProvider(tmp / "nothing"), EnvSecretProvider(environ=_env())
    ),
    "composite-file-last": lambda tmp: CompositeSecretProvider(
        EnvSecretProvider(environ={}), FileSecretProvider(_files(tmp / "secrets"))
    ),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> SecretProvider:
    return PROVIDERS[request.param](tmp_path)


def _everything_said(exc: BaseException) -> str:
    """All text the exception can reveal: message, repr, args, attributes, chained causes, traceback."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def test_found(provider: SecretProvider) -> None:
    for (name, key), value in SECRETS.items():
        assert await provider.get(name, key) == value


@pytest.mark.parametrize(
    ("name", "key"),
    [("db-creds", "token"), ("nope", "password"), ("DB-CREDS", "missing"), ("api.token", "other")],
)
async def test_not_found_names_the_secret_and_leaks_nothing(provider: SecretProvider, name: str, key: str) -> None:
    with pytest.raises(SecretNotFound) as info:
        await provider.get(name, key)
    exc = info.value
    assert (exc.name, exc.key) == (name, key)
    assert repr(name) in str(exc) and repr(key) in str(exc)
    said = _everything_said(exc)
    for value in VALUES:
        assert value not in said
        for line in value.splitlines():
            assert line not in said


@pytest.mark.parametrize(("name", "key"), [("", "password"), ("db-creds", "")])
async def test_empty_name_or_key_is_not_found(provider: SecretProvider, name: str, key: str) -> None:
    with pytest.raises(SecretNotFound):
        await provider.get(name, key)


# --- provider specifics --------------------------------------------------------------------------------


def test_env_var_name_is_upper_case_with_underscores() -> None:
    assert env_var_name("AETHER_SECRET_", "db-creds", "password") == "AETHER_SECRET_DB_CREDS_PASSWORD"
    assert env_var_name("AETHER_SECRET_", "api.token", "my key") == "AETHER_SECRET_API_TOKEN_MY_KEY"


async def test_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AETHER_SECRET_DB_CREDS_PASSWORD", "from-env")
    assert await EnvSecretProvider().get("db-creds", "password") == "from-env"


async def test_file_strips_only_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "lf").write_text("v\n\n")
    (tmp_path / "s" / "crlf").write_bytes(b"v\r\n")
    (tmp_path / "s" / "none").write_text(" v ")
    provider = FileSecretProvider(tmp_path)
    assert await provider.get("s", "lf") == "v\n"
    assert await provider.get("s", "crlf") == "v"
    assert await provider.get("s", "none") == " v "


@pytest.mark.parametrize(
    ("name", "key"),
    [("..", "outside"), ("s", "../../outside"), ("../outside", "x"), (".", "k"), ("s", "a/b"), ("s\\..", "k")],
)
async def test_file_refuses_path_traversal(tmp_path: Path, name: str, key: str) -> None:
    (tmp_path / "outside").write_text("not-for-you")
    (tmp_path / "root" / "s").mkdir(parents=True)
    with pytest.raises(InvalidSecretName) as info:
        await FileSecretProvider(tmp_path / "root").get(name, key)
    assert "not-for-you" not in _everything_said(info.value)


async def test_file_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("not-for-you")
    (tmp_path / "root" / "s").mkdir(parents=True)
    (tmp_path / "root" / "s" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidSecretName):
        await FileSecretProvider(tmp_path / "root").get("s", "link")


async def test_file_undecodable_content_is_not_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "bin").write_bytes(b"\xffsecret-bytes-42")
    with pytest.raises(ValueError) as info:
        await FileSecretProvider(tmp_path).get("s", "bin")
    assert "secret-bytes-42" not in _everything_said(info.value)


async def test_composite_returns_the_first_that_has_it(tmp_path: Path) -> None:
    first = EnvSecretProvider(environ={"AETHER_SECRET_DB_CREDS_PASSWORD": "first"})
    second = FileSecretProvider(_files(tmp_path))
    composite = CompositeSecretProvider(first, second)
    assert await composite.get("db-creds", "password") == "first"
    assert await composite.get("db-creds", "user") == SECRETS[("db-creds", "user")]


async def test_composite_propagates_other_errors(tmp_path: Path) -> None:
    class Broken:
        async def get(self, name: str, key: str) -> str:
            raise RuntimeError("vault down")

    composite = CompositeSecretProvider(EnvSecretProvider(environ={}), Broken(), EnvSecretProvider(environ=_env()))
    with pytest.raises(RuntimeError, match="vault down"):
        await composite.get("db-creds", "password")
