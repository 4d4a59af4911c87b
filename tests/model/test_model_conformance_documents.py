"""Every workflow of Aether's conformance corpus loads and validates exactly as Aether decides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_cron_defaults, fill_defaults
from aether_es.model.documents import CronWorkflow
from aether_es.model.loading import load_document
from aether_es.model.validation import validate_cron_workflow, validate_workflow

CORPUS = Path(
    os.environ.get(
        "AETHER_CONFORMANCE_WORKFLOWS",
        Path(__file__).resolve().parents[3] / "shared" / "conformance" / "aether-v1" / "workflows",
    )
)
FILES = sorted(CORPUS.glob("*.json")) if CORPUS.is_dir() else []
EXPECTED_FAILURES = {
    "27-hooks-invalid-template": (
        'aether: validation error: spec.hooks: onSuccess template "main" must be a task template (not dag or loop)'
    ),
}

pytestmark = pytest.mark.skipif(
    not FILES, reason=f"conformance workflows not found at {CORPUS} (set AETHER_CONFORMANCE_WORKFLOWS)"
)


def _validate(path: Path) -> None:
    document = load_document(path.read_bytes())
    if isinstance(document, CronWorkflow):
        validate_cron_workflow(fill_cron_defaults(document))
    else:
        validate_workflow(fill_defaults(document))


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_conformance_workflow(path: Path) -> None:
    expected = EXPECTED_FAILURES.get(path.stem)
    if expected is None:
        _validate(path)
        return
    with pytest.raises(ValidationError) as info:
        _validate(path)
    assert str(info.value) == expected


def test_corpus_includes_cron_and_the_invalid_example() -> None:
    stems = {path.stem for path in FILES}
    assert set(EXPECTED_FAILURES) <= stems
    assert any(isinstance(load_document(path.read_bytes()), CronWorkflow) for path in FILES)
