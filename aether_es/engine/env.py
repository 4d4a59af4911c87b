"""Evaluation envs: the flat maps of dotted names that expressions and valueFrom lookups read.

An env is lazy. It answers `key in env` and `env[key]` from its layers on demand instead of materialising
every sibling's outputs, so building one costs nothing however many children a container has. Layers are searched from
the highest priority down, which reproduces Aether's "later sources overwrite earlier keys".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aether_es.model.documents import Parameter
from aether_es.projections.run_state import TaskRunView

_MISSING = object()

TaskLookup = Callable[[str], TaskRunView | None]


def param_value(param: Parameter) -> Any:
    """A parameter's value as the env sees it: its value, else its default."""
    return param.value if param.value is not None else param.default


def as_condition(result: Any) -> bool | None:
    """An expression's result read as a condition (`when`, a retry expression, `repeatCondition`): a boolean,
    or a string that is true only as "true"; None for any other type, which the caller reports."""
    if isinstance(result, bool):
        return result
    if isinstance(result, str):
        return result == "true"
    return None


def parameters_map(prefix: str, params: list[Parameter] | None) -> dict[str, Any]:
    """`prefix + name -> value` for a parameter list; later names overwrite earlier ones."""
    return {prefix + p.name: param_value(p) for p in params or ()}


def task_var(task: TaskRunView, rest: str, phase: str | None = None) -> Any:
    """One `tasks.<name>.<rest>` key of a task run, or _MISSING. `phase` overrides the recorded phase."""
    if rest == "phase":
        return phase if phase is not None else task.phase
    outputs = task.outputs
    if outputs is None:
        return _MISSING
    if rest == "code":
        return outputs.code or 0
    if rest == "msg":
        return outputs.message or ""
    if rest.startswith("outputs.parameters."):
        name = rest[len("outputs.parameters.") :]
        for param in reversed(outputs.parameters):
            if param.name == name:
                return param.value
    if rest.startswith("outputs.artifacts."):
        name = rest[len("outputs.artifacts.") :]
        for artifact in reversed(outputs.artifacts):
            if artifact.name == name:
                return artifact.dump()
    return _MISSING


class TaskVars:
    """The `tasks.*` layer: a name resolved to a task run (siblings, children, or one task)."""

    __slots__ = ("lookup", "phase_override")

    def __init__(self, lookup: TaskLookup, phase_override: tuple[str, str] | None = None) -> None:
        self.lookup = lookup
        self.phase_override = phase_override

    def get(self, key: str) -> Any:
        if not key.startswith("tasks."):
            return _MISSING
        name, _, rest = key[len("tasks.") :].partition(".")
        task = self.lookup(name)
        if task is None or not rest:
            return _MISSING
        override = self.phase_override
        phase = override[1] if override is not None and override[0] == name else None
        return task_var(task, rest, phase)


class Env(Mapping[str, Any]):
    """Layers in priority order, lowest first: plain maps and `TaskVars`."""

    __slots__ = ("layers",)

    def __init__(self, *layers: Mapping[str, Any] | TaskVars | None) -> None:
        self.layers = tuple(layer for layer in layers if layer is not None)

    def _find(self, key: str) -> Any:
        for layer in reversed(self.layers):
            if isinstance(layer, TaskVars):
                value = layer.get(key)
                if value is not _MISSING:
                    return value
            elif key in layer:
                return layer[key]
        return _MISSING

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(key) is not _MISSING

    def __getitem__(self, key: str) -> Any:
        value = self._find(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.materialise())

    def __len__(self) -> int:
        return len(self.materialise())

    def materialise(self) -> dict[str, Any]:
        """Every plain key (task layers are not enumerable); for display and debugging only."""
        out: dict[str, Any] = {}
        for layer in self.layers:
            if not isinstance(layer, TaskVars):
                out.update(layer)
        return out
