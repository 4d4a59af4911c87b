"""NATS connection options: flags over the environment, every bad combination named, and what reaches
`nats.connect`."""

from __future__ import annotations

import argparse
import importlib.util
import ssl
from pathlib import Path

import pytest

from aether_es.adapters.nats.connection import NATS_OPTIONS, ConnectOptionError, NatsAuth, seed_urls
from aether_es.cli.remote import EXIT_INVALID, RemoteError, add_remote_options, auth_options


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_remote_options(parser)
    return parser.parse_args(list(argv))


def test_every_option_has_a_flag_and_an_environment_variable() -> None:
    assert [(o.flag, o.env) for o in NATS_OPTIONS] == [
        ("--user", "AETHER_NATS_USER"),
        ("--password", "AETHER_NATS_PASSWORD"),
        ("--token", "AETHER_NATS_TOKEN"),
        ("--nkey", "AETHER_NATS_NKEY"),
        ("--creds", "AETHER_NATS_CREDS"),
        ("--tls-ca", "AETHER_NATS_TLS_CA"),
        ("--tls-cert", "AETHER_NATS_TLS_CERT"),
        ("--tls-key", "AETHER_NATS_TLS_KEY"),
    ]


def test_environment_alone() -> None:
    auth = NatsAuth.from_env({"AETHER_NATS_USER": "engine", "AETHER_NATS_PASSWORD": "s3cret", "OTHER": "x"})
    assert auth == NatsAuth(user="engine", password="s3cret")
    assert auth.connect_kwargs() == {"user": "engine", "password": "s3cret"}


def test_nothing_set_means_nothing_passed() -> None:
    auth = NatsAuth.from_env({"AETHER_NATS_TOKEN": ""})
    assert not auth.configured
    assert auth.connect_kwargs() == {}


def test_flags_replace_every_credential_of_the_environment() -> None:
    env = {"AETHER_NATS_USER": "engine", "AETHER_NATS_PASSWORD": "s3cret"}
    assert NatsAuth.resolve({"token": "t0ken"}, env).connect_kwargs() == {"token": "t0ken"}
    assert NatsAuth.resolve({"user": "worker", "password": "other"}, env) == NatsAuth(user="worker", password="other")
    assert NatsAuth.resolve({"token": None}, env) == NatsAuth(user="engine", password="s3cret")


def test_credential_flags_keep_the_environments_tls_files(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    env = {"AETHER_NATS_TLS_CA": str(ca), "AETHER_NATS_TOKEN": "t0ken"}
    with pytest.raises(ConnectOptionError, match=r"^--tls-ca \(\$AETHER_NATS_TLS_CA\): .* is not a PEM CA"):
        NatsAuth.resolve({"user": "u", "password": "p"}, env)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"password": "p"}, r"^--password \(\$AETHER_NATS_PASSWORD\) needs --user \(\$AETHER_NATS_USER\)$"),
        ({"user": "u"}, r"^--user \(\$AETHER_NATS_USER\) needs --password \(\$AETHER_NATS_PASSWORD\)$"),
        (
            {"user": "u", "password": "p", "token": "t"},
            r"^--user \(\$AETHER_NATS_USER\) and --token \(\$AETHER_NATS_TOKEN\) are two ways to authenticate",
        ),
        ({"token": "t", "creds": "x.creds"}, r"^--token .* and --creds \(\$AETHER_NATS_CREDS\) are two ways"),
        ({"tls_cert": "c.pem"}, r"^--tls-cert \(\$AETHER_NATS_TLS_CERT\) needs --tls-key \(\$AETHER_NATS_TLS_KEY\)$"),
        ({"tls_key": "k.pem"}, r"^--tls-key \(\$AETHER_NATS_TLS_KEY\) needs --tls-cert \(\$AETHER_NATS_TLS_CERT\)$"),
    ],
)
def test_bad_combinations_name_the_option(given: dict[str, str], message: str) -> None:
    with pytest.raises(ConnectOptionError, match=message):
        NatsAuth.resolve(given, {})


@pytest.mark.parametrize("field", ["nkey", "creds", "tls_ca"])
def test_an_unreadable_file_names_its_option(tmp_path: Path, field: str) -> None:
    missing = tmp_path / "nowhere" / "file"
    option = next(o for o in NATS_OPTIONS if o.field == field)
    with pytest.raises(ConnectOptionError) as caught:
        NatsAuth.resolve({field: str(missing)}, {})
    assert str(caught.value) == f"{option.flag} (${option.env}): cannot read {missing}: No such file or directory"


@pytest.mark.skipif(importlib.util.find_spec("nkeys") is not None, reason="nkeys is installed")
def test_nkey_and_creds_say_which_package_they_need(tmp_path: Path) -> None:
    seed = tmp_path / "user.nk"
    seed.write_text("SUAEXAMPLE\n")
    with pytest.raises(ConnectOptionError, match=r"^--nkey \(\$AETHER_NATS_NKEY\) needs the nkeys package"):
        NatsAuth.resolve({"nkey": str(seed)}, {})
    with pytest.raises(ConnectOptionError, match=r"^--creds \(\$AETHER_NATS_CREDS\) needs the nkeys package"):
        NatsAuth.from_env({"AETHER_NATS_CREDS": str(seed)})


def test_nkey_and_creds_reach_nats_connect_as_paths() -> None:
    """Built directly (not checked), as `connect_kwargs` sees them once `check` passed."""
    assert NatsAuth(nkey="/keys/user.nk").connect_kwargs() == {"nkeys_seed": "/keys/user.nk"}
    assert NatsAuth(creds="/keys/user.creds").connect_kwargs() == {"user_credentials": "/keys/user.creds"}


def test_a_bad_certificate_and_key_pair_names_both(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    cert.write_text("junk")
    key.write_text("junk")
    with pytest.raises(ConnectOptionError, match=r"^--tls-cert \(\$AETHER_NATS_TLS_CERT\) .* and --tls-key"):
        NatsAuth.resolve({"tls_cert": str(cert), "tls_key": str(key)}, {})


def test_a_tls_ca_alone_gives_a_verifying_context() -> None:
    kwargs = NatsAuth.resolve({"tls_ca": ssl.get_default_verify_paths().cafile or ""}, {}).connect_kwargs()
    if not kwargs:
        pytest.skip("no system CA bundle to stand in for a CA file")
    context = kwargs["tls"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0


def test_cli_flags_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AETHER_NATS_USER", "engine")
    monkeypatch.setenv("AETHER_NATS_PASSWORD", "s3cret")
    assert auth_options("workers", parse()) == NatsAuth(user="engine", password="s3cret")
    assert auth_options("workers", parse("--user", "reader", "--password", "pw")) == NatsAuth(
        user="reader", password="pw"
    )
    assert auth_options("workers", parse("--token", "t0ken")) == NatsAuth(token="t0ken")


def test_cli_errors_are_one_line_with_the_invalid_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AETHER_NATS_USER", raising=False)
    with pytest.raises(RemoteError) as caught:
        auth_options("workers", parse("--password", "pw"))
    assert caught.value.code == EXIT_INVALID
    assert str(caught.value) == "aether: workers: --password ($AETHER_NATS_PASSWORD) needs --user ($AETHER_NATS_USER)"


def test_a_cluster_url_names_each_seed_in_order() -> None:
    assert seed_urls("nats://a:4222, nats://b:4222,,nats://c:4222 ") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    assert seed_urls("nats://a:4222") == ["nats://a:4222"]
    with pytest.raises(ValueError, match="no NATS server URL"):
        seed_urls(" , ")
