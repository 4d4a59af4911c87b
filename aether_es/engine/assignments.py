"""The assignment a worker gets for a leaf's current attempt: everything it needs ("fat"), built from the
recorded state only, so a restarted engine sends exactly what was decided."""

from __future__ import annotations

from typing import Any

from aether_es.engine.binding import interpolate, placeholder_keys
from aether_es.engine.decision import Decision
from aether_es.engine.effects import DispatchTask
from aether_es.engine.env import param_value, parameters_map
from aether_es.model.documents import Artifact, Task
from aether_es.ports.wire import TaskAssignment, WireArtifact, WireParameter
from aether_es.projections.run_state import TaskRunView


def definition(decision: Decision, task: TaskRunView) -> Task | None:
    """The task template named by the record, else the inline-executor DAG node it came from."""
    tpl = decision.template(task.template_name)
    if tpl is not None and tpl.task is not None:
        return tpl.task
    node = decision.node(decision.parent(task), task.task_name)
    if node is not None and node.executor is not None:
        return node
    return None


def dispatch_effect(decision: Decision, task: TaskRunView) -> DispatchTask:
    """The fat assignment for the task's current attempt, built from recorded state only."""
    decl = definition(decision, task)
    resources = decl.resources.dump() if decl is not None and decl.resources is not None else None
    params: list[WireParameter] = []
    secret_refs: list[tuple[str, str, str]] = []
    for param in task.inputs or ():
        ref = param.value_from.secret_key_ref if param.value_from is not None else None
        if ref is not None and param.value is None:
            secret_refs.append((param.name, ref.name, ref.key))
        params.append(WireParameter(name=param.name, type=param.type, value=param_value(param)))
    config, templates = _executor_config(decl, task)
    assignment = TaskAssignment(
        task_run_id=task.id,
        workflow_run_id=task.workflow_run_id,
        task_name=task.task_name,
        template_name=task.template_name,
        executor_type=task.executor_type,
        attempt=task.attempt,
        inputs=params,
        timeout=task.timeout,
        resources=resources,
        priority=decision.workflow.spec.priority,
        retry_count=task.retry_count,
        artifacts=[_wire_artifact(a) for a in task.input_artifacts or ()],
        output_artifacts=[
            _wire_artifact(a) for a in (decl.outputs.artifacts if decl is not None and decl.outputs is not None else ())
        ],
        config=config,
        templates=templates,
        resumed_with=list(task.resumed_with) if task.resumed_with is not None else None,
    )
    return DispatchTask(assignment=assignment, secret_refs=tuple(secret_refs))


AS_WRITTEN: dict[str, str] = {"python": "callable", "shell": "command"}
"""Per executor type, the config key that chooses the code that runs: never interpolated by the engine, so a
value cannot choose it; the executor reads it as written (docs/security.md)."""

ConfigPath = list[str | int]


def _executor_config(decl: Task | None, task: TaskRunView) -> tuple[dict[str, Any] | None, list[ConfigPath]]:
    """`executor.config` with its strings interpolated from the task's recorded inputs, and the paths of the
    strings left as written for the worker.

    A string naming a secret input is left whole (a secret has no recorded value) and its path listed: the
    worker fills exactly those strings, in one pass, so a value's text is never interpolated a second time.
    The key that chooses the code (`AS_WRITTEN`) is left as written and not listed. Unknown keys stay, as in
    any other interpolation.
    """
    config = decl.executor.config if decl is not None and decl.executor is not None else None
    if not isinstance(config, dict):
        return None, []
    secret = {
        f"inputs.parameters.{p.name}"
        for p in task.inputs or ()
        if p.value_from is not None and p.value_from.secret_key_ref is not None
    }
    env = parameters_map(
        "inputs.parameters.", [p for p in task.inputs or () if f"inputs.parameters.{p.name}" not in secret]
    )
    templates: list[ConfigPath] = []

    def fill(value: Any, path: ConfigPath) -> Any:
        if isinstance(value, str):
            if secret.intersection(placeholder_keys(value)):
                templates.append(path)
                return value
            return interpolate(value, env)
        if isinstance(value, list):
            return [fill(item, [*path, index]) for index, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: fill(item, [*path, key]) for key, item in value.items()}
        return value

    code_key = AS_WRITTEN.get(decl.executor.type) if decl is not None and decl.executor is not None else None
    filled = {key: item if key == code_key else fill(item, [key]) for key, item in config.items()}
    return filled, templates


def _wire_artifact(artifact: Artifact) -> WireArtifact:
    source = artifact.source.dump() if artifact.source is not None else None
    return WireArtifact(
        name=artifact.name,
        source=source,
        path=artifact.path,
        archive=artifact.archive.type if artifact.archive is not None else "",
        optional=artifact.optional,
        digest=artifact.digest,
    )
