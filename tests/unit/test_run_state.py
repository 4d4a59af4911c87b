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
            outputs=ResultOutputs(
                phase=ph.SUCCEEDED,
                parameters=[Parameter(name="message", value="hello")],
                metrics=Metrics(started_at=T0, finished_at=T1, duration="5ms"),
            ),
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


def test_only_containers_get_a_scope_index() -> None:
    state = fold(history())
    assert state.tasks["leaf"].index is None
    assert state.tasks["dag"].index is not None
    assert state.tasks["dag"].kids.children == ["leaf"]
    assert state.children_of("dag") is state.tasks["dag"].kids


def test_a_leaf_keeps_its_values_as_json_and_reads_them_back_equal() -> None:
    envelopes = history()
    finished = envelopes[-1].event
    assert isinstance(finished, ev.TaskFinished)
    leaf = fold(envelopes).tasks["leaf"]
    assert all(isinstance(v, bytes) for v in (leaf.packed_inputs, leaf.packed_outputs, leaf.packed_metrics))
    assert leaf.inputs == [Parameter(name="message", value="hello")]
    assert leaf.outputs == finished.outputs
    assert leaf.metrics == finished.metrics
    assert leaf.outputs is not leaf.outputs  # rebuilt on each read: nothing holds the objects


def test_a_leafs_public_record_is_what_dumping_its_values_gives() -> None:
    leaf = fold(history()).tasks["leaf"]
    record = leaf.to_dict()
    assert record["inputs"] == {"parameters": [p.dump() for p in leaf.inputs or []]}
    assert record["outputs"] == (leaf.outputs.dump() if leaf.outputs else None)
    assert record["metrics"] == (leaf.metrics.dump() if leaf.metrics else None)
    assert record["inputs"] == {"parameters": [{"name": "message", "value": "hello"}]}


def test_containers_keep_their_values_as_objects() -> None:
    bound = [Parameter(name="who", value="world")]
    envelopes = [
        *history()[:2],
        *make_envelopes("run", 3, [ev.TaskInputsBound(task_id="dag", inputs=bound)], T1, "t", "c"),
    ]
    dag = fold(envelopes).tasks["dag"]
    assert dag.packed_inputs == bound and dag.inputs is dag.packed_inputs
