"""The run projection: views folded from a history, independent of when the document is parsed."""

from __future__ import annotations

import json
from pathlib import Path

from aether_es.events import catalogue as ev
from aether_es.events.envelope import Envelope, make_envelopes
from aether_es.events.values import Metrics, ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.defaults import fill_defaults
from aether_es.model.documents import Parameter
from aether_es.model.loading import load_workflow
from aether_es.projections.run_state import apply, fold

DOCUMENT = json.loads((Path(__file__).parents[2] / "examples" / "hello-pipeline.json").read_text())
T0, T1 = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.005Z"


def history() -> list[Envelope]:
    params = [Parameter(name="message", value="hello")]
    events: list[ev.Event] = [
        ev.RunSubmitted(workflow=DOCUMENT, created_at=T0),
        ev.TaskCreated(task_id="dag", task_name="pipeline", template_type="dag", created_at=T0),
        ev.TaskCreated(
            task_id="leaf", parent_id="dag", depth=1, task_name="greet", template_type="task", created_at=T0
        ),
        ev.TaskDispatched(task_id="leaf", attempt=1, executor_type="echo", inputs=params),
        ev.TaskStarted(task_id="leaf", attempt=1, started_at=T0),
        ev.TaskFinished(
            task_id="leaf",
            attempt=1,
            phase=ph.SUCCEEDED,
            outputs=ResultOutputs(phase=ph.SUCCEEDED, parameters=params),
            metrics=Metrics(started_at=T0, finished_at=T1, duration="5ms"),
        ),
    ]
    return make_envelopes("run", 1, events, T1, "test", "test:1")


def test_the_document_is_parsed_only_when_read() -> None:
    state = fold(history())
    assert state.parsed is None
    assert state.workflow == fill_defaults(load_workflow(DOCUMENT))
    assert state.workflow is state.parsed


def test_views_do_not_depend_on_when_the_document_was_parsed() -> None:
    early = fold(history()[:1])
    assert early.workflow.metadata.namespace == "default"
    for env in history()[1:]:
        apply(early, env)
    late = fold(history())
    assert late.parsed is None
    assert early.to_dict() == late.to_dict()
    assert early == late
