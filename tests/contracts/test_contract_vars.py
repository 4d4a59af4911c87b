"""Variable sources: every source honours the protocol, and the engine layers them by spec §3.16's rules."""

from __future__ import annotations

from typing import Any

import pytest

from aether_es.adapters.idgen import CounterIdGenerator
from aether_es.adapters.vars_sources import StaticSource, SystemSource, go_arch, go_os
from aether_es.ports.vars import VarsSource
from aether_es.runtime.engine import Engine


@pytest.mark.parametrize("source", [SystemSource(), StaticSource("deploy", {"region": "ap-east-1"})])
def test_every_source_has_a_namespace_and_plain_keys(source: VarsSource) -> None:
    assert source.namespace() and "." not in source.namespace()
    values = source.vars()
    assert values and all(isinstance(key, str) and not key.startswith(source.namespace() + ".") for key in values)


def test_system_source_speaks_go() -> None:
    assert dict(SystemSource().vars()) == {"os": go_os(), "arch": go_arch()}
    assert go_arch() in {"amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64"}


def _engine(*sources: VarsSource | None) -> Engine:
    placeholder: Any = object()  # the vars context touches no port
    return Engine(store=placeholder, broker=placeholder, ids=CounterIdGenerator(), vars_sources=sources)


def test_engine_layers_sources_in_registration_order() -> None:
    engine = _engine(
        SystemSource(),
        StaticSource("deploy", {"cluster": "a", "region": "x"}),
        None,  # ignored, as Aether ignores a nil source
        StaticSource("deploy", {"cluster": "b"}),
    )
    values = engine._context().vars
    assert values["deploy.cluster"] == "b"  # within a namespace, later sources overwrite earlier keys
    assert values["deploy.region"] == "x"  # and keep the keys they do not set
    assert values["system.os"] == go_os()
