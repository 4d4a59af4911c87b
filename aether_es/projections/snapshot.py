"""A run's folded state as bytes, so a long run rehydrates from a snapshot plus the events after it.

The snapshot holds every field of the state the fold produces (the decider's derived index excepted, it is
rebuilt on demand), so snapshot + tail folds to exactly what the whole history folds to. It is stamped with the state's
shape: a snapshot written by a version of the engine whose views had other fields is not read (`None`), and
the run is folded from its history instead, which is always correct, only slower.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson
from pydantic import TypeAdapter

from aether_es.events.values import Metrics, ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.documents import Artifact, Parameter
from aether_es.projections.run_state import Children, RunState, TaskRunView

_PARAMETERS = TypeAdapter(list[Parameter])
_ARTIFACTS = TypeAdapter(list[Artifact])
_OUTPUTS = TypeAdapter(ResultOutputs)
_METRICS = TypeAdapter(Metrics)
_VALUES: dict[str, TypeAdapter[Any]] = {
    "packed_inputs": _PARAMETERS,
    "packed_outputs": _OUTPUTS,
    "packed_metrics": _METRICS,
}
_SKIPPED = {"derived", "parsed"}


def _shape() -> str:
    names = [f"{cls.__name__}:{f.name}" for cls in (RunState, TaskRunView, Children) for f in dataclasses.fields(cls)]
    return hashlib.blake2b("|".join(names).encode(), digest_size=8).hexdigest()


SHAPE = _shape()


def _children(index: Children) -> dict[str, Any]:
    return {
        "children": index.children,
        "terminal": index.terminal,
        "created": list(index.created),
        "by_name": index.by_name,
    }


def _children_of(raw: dict[str, Any]) -> Children:
    return Children(raw["children"], raw["terminal"], dict.fromkeys(raw["created"]), raw["by_name"])


def _value(name: str, value: Any) -> Any:
    """Packed leaf values stay their exact JSON (as a string); objects are dumped to JSON values."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return {"packed": value.decode()}
    adapter = _ARTIFACTS if name == "input_artifacts" else _VALUES[name]
    return {"object": adapter.dump_python(value, mode="json", by_alias=True)}


def _value_of(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if "packed" in raw:
        return raw["packed"].encode()
    adapter = _ARTIFACTS if name == "input_artifacts" else _VALUES[name]
    return adapter.validate_python(raw["object"])


def _task(task: TaskRunView) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(TaskRunView):
        value = getattr(task, f.name)
        if f.name in _VALUES or f.name == "input_artifacts":
            out[f.name] = _value(f.name, value)
        elif f.name == "index":
            out[f.name] = None if value is None else _children(value)
        else:
            out[f.name] = value
    return out


def _task_of(raw: dict[str, Any]) -> TaskRunView:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _VALUES or name == "input_artifacts":
            values[name] = _value_of(name, value)
        elif name == "index":
            values[name] = None if value is None else _children_of(value)
        elif name == "resumed_with":
            values[name] = None if value is None else tuple(value)
        else:
            values[name] = value
    return TaskRunView(**values)


def encode_snapshot(state: RunState) -> bytes:
    body = {
        "shape": SHAPE,
        "run_id": state.run_id,
        "document": state.document,
        "created_at": state.created_at,
        "cron_id": state.cron_id,
        "phase": state.phase,
        "message": state.message,
        "outputs": None if state.outputs is None else _OUTPUTS.dump_python(state.outputs, mode="json", by_alias=True),
        "metrics": None if state.metrics is None else _METRICS.dump_python(state.metrics, mode="json", by_alias=True),
        "deadline": state.deadline,
        "updated_at": state.updated_at,
        "tasks": [_task(state.tasks[task_id]) for task_id in state.order],
        "root": _children(state.root),
        "events": state.events,
        "seq": state.seq,
    }
    return orjson.dumps(body)


def decode_snapshot(data: bytes) -> RunState | None:
    """The state a snapshot holds, or None when it was written for views of another shape."""
    raw = orjson.loads(data)
    if raw.get("shape") != SHAPE:
        return None
    tasks = [_task_of(task) for task in raw["tasks"]]
    return RunState(
        run_id=raw["run_id"],
        document=raw["document"],
        created_at=raw["created_at"],
        cron_id=raw["cron_id"],
        phase=raw["phase"],
        message=raw["message"],
        outputs=None if raw["outputs"] is None else _OUTPUTS.validate_python(raw["outputs"]),
        metrics=None if raw["metrics"] is None else _METRICS.validate_python(raw["metrics"]),
        deadline=raw["deadline"],
        updated_at=raw["updated_at"],
        tasks={task.id: task for task in tasks},
        order=[task.id for task in tasks],
        root=_children_of(raw["root"]),
        events=raw["events"],
        seq=raw["seq"],
        suspended=sum(task.phase == ph.SUSPENDED for task in tasks),
    )
