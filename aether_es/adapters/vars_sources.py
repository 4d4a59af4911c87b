"""Variable sources for evaluation envs: `system.os`/`system.arch` and fixed namespaces like `deploy.*`.

Workflows branch on `system.os` and the conformance corpus expects `{{runtime.os}}`/`{{runtime.arch}}`,
both in Go's GOOS/GOARCH spelling, so the Python platform names are translated here, in one place.
"""

from __future__ import annotations

import functools
import platform
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["StaticSource", "SystemSource", "go_arch", "go_os", "goarch_for", "goos_for"]

_GOOS = {"linux": "linux", "darwin": "darwin", "windows": "windows", "win32": "windows", "cygwin": "windows"}
_GOOS |= {"freebsd": "freebsd", "openbsd": "openbsd", "netbsd": "netbsd", "dragonfly": "dragonfly"}
_GOOS |= {"sunos": "solaris", "aix": "aix", "emscripten": "js", "wasi": "wasip1", "android": "android"}
_GOOS |= {"ios": "ios"}

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "em64t": "amd64"}
_GOARCH |= {"aarch64": "arm64", "arm64": "arm64", "armv8l": "arm"}
_GOARCH |= {"i386": "386", "i486": "386", "i586": "386", "i686": "386", "x86": "386", "i86pc": "386"}
_GOARCH |= {"ppc64le": "ppc64le", "ppc64": "ppc64", "ppc": "ppc", "powerpc": "ppc"}
_GOARCH |= {"s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64", "mips64": "mips64"}
_GOARCH |= {"mips": "mips", "mips64el": "mips64le", "mipsel": "mipsle", "wasm32": "wasm"}


def goos_for(system: str) -> str:
    """Go's GOOS for a `platform.system()` / `sys.platform` name; unknown names pass through lowercased."""
    name = system.lower()
    for prefix, goos in _GOOS.items():
        if name == prefix or (name.startswith(prefix) and not name[len(prefix) :].isalpha()):
            return goos
    return name


def goarch_for(machine: str) -> str:
    """Go's GOARCH for a `platform.machine()` name (`armv7l` -> `arm`); unknown names pass lowercased."""
    name = machine.lower()
    if name in _GOARCH:
        return _GOARCH[name]
    if name.startswith("arm"):
        return "arm"
    return name


@functools.cache
def go_os() -> str:
    """The host OS as Go spells GOOS (`linux`, `darwin`, `windows`, ...)."""
    return goos_for(platform.system() or sys.platform)


@functools.cache
def go_arch() -> str:
    """The host architecture as Go spells GOARCH (`amd64`, `arm64`, `386`, `arm`, ...)."""
    return goarch_for(platform.machine())


class SystemSource:
    """Namespace `system`: keys `os` and `arch` in Go spelling (Aether's vars.SystemSource)."""

    def namespace(self) -> str:
        return "system"

    def vars(self) -> Mapping[str, Any]:
        return MappingProxyType({"os": go_os(), "arch": go_arch()})


class StaticSource:
    """A fixed namespace, e.g. the playground's `deploy` with `cluster` and `region`.

    The values are copied at construction so later changes by the caller cannot leak into envs.
    """

    def __init__(self, namespace: str, values: Mapping[str, Any]) -> None:
        self._namespace = namespace
        self._values: Mapping[str, Any] = MappingProxyType(dict(values))

    def namespace(self) -> str:
        return self._namespace

    def vars(self) -> Mapping[str, Any]:
        return self._values
