"""Conformance corpora on a real nats-server: Aether's own (when it sits beside the project) and ours.

Each case also checks that the run's views rebuilt from its event log equal the live views.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.conformance.runner import CaseResult, discover, run_corpus

ROOT = Path(__file__).resolve().parents[2]
AETHER_CORPUS = ROOT.parent / "shared" / "conformance" / "aether-v1"
OWN_CORPUS = ROOT / "tests" / "corpus"


def _run(directory: Path, tmp: Path) -> dict[str, CaseResult]:
    with EmbeddedNatsServer(tmp / "nats") as server:
        results = asyncio.run(run_corpus(directory, nats_url=server.url))
    return {result.case.name: result for result in results}


@pytest.fixture(scope="module")
def aether_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CaseResult]]:
    if not AETHER_CORPUS.is_dir():
        pytest.skip(f"Aether's conformance corpus is not at {AETHER_CORPUS} (it sits beside the project in CI)")
    yield _run(AETHER_CORPUS, tmp_path_factory.mktemp("aether-corpus"))


@pytest.fixture(scope="module")
def own_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    return _run(OWN_CORPUS, tmp_path_factory.mktemp("own-corpus"))


def _case_names(directory: Path) -> list[str]:
    return [case.name for case in discover(directory)] if directory.is_dir() else ["corpus-absent"]


@pytest.mark.parametrize("name", _case_names(AETHER_CORPUS))
def test_aether_case(name: str, aether_results: dict[str, CaseResult]) -> None:
    result = aether_results[name]
    assert result.passed, result.line()


@pytest.mark.parametrize("name", _case_names(OWN_CORPUS))
def test_own_case(name: str, own_results: dict[str, CaseResult]) -> None:
    result = own_results[name]
    assert result.passed, result.line()


def test_aether_corpus_is_complete() -> None:
    """The runner finds all 39 cases and pairs 37 and 39 with the derived assertions."""
    if not AETHER_CORPUS.is_dir():
        pytest.skip(f"Aether's conformance corpus is not at {AETHER_CORPUS}")
    cases = discover(AETHER_CORPUS)
    assert len(cases) == 39
    assert {c.name for c in cases if c.derived} == {"37-empty-loop-repeat", "39-empty-loop-declared-outputs"}
    assert all(c.assertion is not None for c in cases)
