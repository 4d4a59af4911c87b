"""Go GOOS/GOARCH spelling and the vars sources (spec §3.16, conformance README §2.4)."""

from __future__ import annotations

import platform

import pytest

from aether_es.adapters import vars_sources
from aether_es.adapters.vars_sources import StaticSource, SystemSource, go_arch, go_os, goarch_for, goos_for
from aether_es.ports.vars import VarsSource


@pytest.mark.parametrize(
    ("machine", "arch"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("amd64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("ARM64", "arm64"),
        ("i386", "386"),
        ("i686", "386"),
        ("x86", "386"),
        ("armv7l", "arm"),
        ("armv6l", "arm"),
        ("armv8l", "arm"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
        ("loongarch64", "loong64"),
        ("mips64el", "mips64le"),
        ("sparc64", "sparc64"),
        ("", ""),
    ],
)
def test_goarch_for(machine: str, arch: str) -> None:
    assert goarch_for(machine) == arch


@pytest.mark.parametrize(
    ("system", "goos"),
    [
        ("Linux", "linux"),
        ("linux", "linux"),
        ("Darwin", "darwin"),
        ("Windows", "windows"),
        ("win32", "windows"),
        ("CYGWIN_NT-10.0", "windows"),
        ("FreeBSD", "freebsd"),
        ("freebsd14", "freebsd"),
        ("SunOS", "solaris"),
        ("AIX", "aix"),
        ("Plan9", "plan9"),
    ],
)
def test_goos_for(system: str, goos: str) -> None:
    assert goos_for(system) == goos


def test_host_values_use_go_spelling() -> None:
    assert go_os() == goos_for(platform.system())
    assert go_arch() == goarch_for(platform.machine())
    assert go_os() in {"linux", "darwin", "windows", "freebsd", "openbsd", "netbsd", "solaris", "aix"}
    assert go_arch() not in {"x86_64", "aarch64", "i686", "AMD64"}


def test_host_lookup_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    go_os.cache_clear()
    go_arch.cache_clear()
    monkeypatch.setattr(vars_sources.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(vars_sources.platform, "machine", lambda: "arm64")
    try:
        assert (go_os(), go_arch()) == ("darwin", "arm64")
        monkeypatch.setattr(vars_sources.platform, "machine", lambda: "x86_64")
        assert go_arch() == "arm64"
    finally:
        go_os.cache_clear()
        go_arch.cache_clear()


def test_system_source() -> None:
    source: VarsSource = SystemSource()
    assert source.namespace() == "system"
    assert dict(source.vars()) == {"os": go_os(), "arch": go_arch()}


def test_system_source_vars_read_only() -> None:
    values = SystemSource().vars()
    with pytest.raises(TypeError):
        values["os"] = "plan9"  # type: ignore[index]


def test_static_source() -> None:
    original = {"cluster": "prod-cluster", "region": "ap-east-1"}
    source: VarsSource = StaticSource("deploy", original)
    assert source.namespace() == "deploy"
    assert dict(source.vars()) == original


def test_static_source_copies_values() -> None:
    original = {"cluster": "a"}
    source = StaticSource("deploy", original)
    original["cluster"] = "b"
    original["new"] = "x"
    assert dict(source.vars()) == {"cluster": "a"}
    with pytest.raises(TypeError):
        source.vars()["cluster"] = "c"  # type: ignore[index]
