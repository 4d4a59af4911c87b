"""The aether/v1 document format as pydantic models.

Field names are snake_case in Python and camelCase in JSON, exactly as Aether spells them. Unknown keys are
ignored (as Go's decoder does) and types are strict, so a number where a string belongs is reported with its
JSON path instead of being coerced.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from aether_es.model.phases import TemplateType


class Doc(BaseModel):
    """Base of every document part: camelCase aliases, strict types, unknown keys ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        extra="ignore",
        frozen=False,
    )

    def dump(self) -> dict[str, Any]:
        """JSON-ready form with Aether's key names, leaving out what is unset or at its default."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


class SecretKeyRef(Doc):
    name: str = ""
    key: str = ""


class ValueFrom(Doc):
    path: str = ""
    parameter: str = ""
    expression: str = ""
    secret_key_ref: SecretKeyRef | None = None

    def is_set(self) -> bool:
        return bool(self.path or self.parameter or self.expression or self.secret_key_ref)


class Parameter(Doc):
    """A named value. `value` and `default` are raw JSON; JSON null counts as absent, as in Aether."""

    name: str = ""
    type: str = ""
    value: Any = None
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    value_from: ValueFrom | None = None


class ArtifactSource(Doc):
    type: str = ""
    config: Any = None


class ArtifactArchive(Doc):
    type: str = ""


class Artifact(Doc):
    """Aether's artifact, and what aether_es adds to move it (docs/artifacts.md): `path` (where the file or
    folder is in the attempt's work directory), `optional` (an output that may be missing), and on a stored
    output the `size` and `digest` the worker recorded."""

    name: str = ""
    from_: str = Field(default="", alias="from")
    source: ArtifactSource | None = None
    archive: ArtifactArchive | None = None
    path: str = ""
    optional: bool = False
    size: int = 0
    digest: str = ""


class Arguments(Doc):
    parameters: list[Parameter] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)


class Inputs(Doc):
    parameters: list[Parameter] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)


class Outputs(Doc):
    parameters: list[Parameter] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)


class Executor(Doc):
    type: str = ""
    config: Any = None


class Backoff(Doc):
    """Protocol extension (Aether retries at once): the n-th retry waits `duration * factor^(n-1)`, at most
    `maxDuration`, after the failed attempt."""

    duration: str = ""
    factor: float = 1.0
    max_duration: str = ""


class Retry(Doc):
    limit: int = 0
    expression: str = ""
    backoff: Backoff | None = None


class ContinueOn(Doc):
    failed: bool = False
    error: bool = False
    timeout: bool = False


class PhaseConditions(Doc):
    succeeded: str = ""
    failed: str = ""
    error: str = ""

    def any(self) -> bool:
        return bool(self.succeeded or self.failed or self.error)


class Resources(Doc):
    cpu: str | int | float | None = None
    memory: str = ""
    gpu: str = ""


class HookRef(Doc):
    template: str = ""


HOOK_KEYS = ("onStart", "onSuccess", "onFailure", "onError", "onSuspend", "onResume", "onCancel", "onExit")


class Hooks(Doc):
    on_start: HookRef | None = None
    on_success: HookRef | None = None
    on_failure: HookRef | None = None
    on_error: HookRef | None = None
    on_suspend: HookRef | None = None
    on_resume: HookRef | None = None
    on_cancel: HookRef | None = None
    on_exit: HookRef | None = None

    def template_for(self, hook_key: str) -> str:
        """The template named by a hook key such as `onSuccess`, or "" when that hook is not declared."""
        ref: HookRef | None = getattr(self, _HOOK_ATTRS[hook_key])
        return ref.template if ref is not None else ""


_HOOK_ATTRS = {key: "on_" + key[2:].lower() for key in HOOK_KEYS}


class Task(Doc):
    """A task template (`templates[].task`) and a DAG node (`dag.tasks[]`) share this shape."""

    name: str = ""
    inputs: Inputs | None = None
    template: str = ""
    executor: Executor | None = None
    dependencies: list[str] = Field(default_factory=list)
    arguments: Arguments | None = None
    when: str = ""
    timeout: str = ""
    retry: Retry | None = None
    continue_on: ContinueOn | None = None
    resources: Resources | None = None
    phase_conditions: PhaseConditions | None = None
    hooks: Hooks | None = None
    outputs: Outputs | None = None


class Dag(Doc):
    name: str = ""
    inputs: Inputs | None = None
    outputs: Outputs | None = None
    entrypoints: list[str] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    continue_on: ContinueOn | None = None
    phase_conditions: PhaseConditions | None = None
    timeout: str = ""

    @field_validator("entrypoints", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """Aether accepts a string or a list and ignores non-string members."""
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return value


class Aggregate(Doc):
    strategy: str = ""
    parameters: list[str] = Field(default_factory=list)


class Loop(Doc):
    name: str = ""
    inputs: Inputs | None = None
    outputs: Outputs | None = None
    repeat_condition: str = ""
    items: list[Any] | None = None
    items_from: str = ""
    concurrency: int = 0
    max_iterations: int = 0
    body: str = ""
    arguments: Arguments | None = None
    aggregate: Aggregate | None = None
    phase_conditions: PhaseConditions | None = None
    timeout: str = ""


class Template(Doc):
    dag: Dag | None = None
    task: Task | None = None
    loop: Loop | None = None

    @property
    def name(self) -> str:
        member = self.dag or self.task or self.loop
        return member.name if member is not None else ""

    @property
    def type(self) -> str:
        """`dag`, `task` or `loop`; "" for an empty union."""
        if self.dag is not None:
            return TemplateType.DAG
        if self.task is not None:
            return TemplateType.TASK
        if self.loop is not None:
            return TemplateType.LOOP
        return ""

    def members(self) -> int:
        return sum(m is not None for m in (self.dag, self.task, self.loop))


class Metadata(Doc):
    name: str = ""
    namespace: str = ""
    version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class WorkflowSpec(Doc):
    entrypoint: str = ""
    arguments: Arguments | None = None
    timeout: str = ""
    priority: int = 0
    max_nested_depth: int = 0
    templates: list[Template] = Field(default_factory=list)
    hooks: Hooks | None = None

    def template(self, name: str) -> Template | None:
        """First template with that name, as Aether's lookup does."""
        for tpl in self.templates:
            if tpl.name == name:
                return tpl
        return None


class Workflow(Doc):
    api_version: str = ""
    kind: str = ""
    metadata: Metadata = Field(default_factory=Metadata)
    spec: WorkflowSpec = Field(default_factory=WorkflowSpec)


class CronWorkflowSpec(Doc):
    schedule: str = ""
    timezone: str = ""
    start_at: str = ""
    end_at: str = ""
    concurrency_policy: str = ""
    starting_deadline_seconds: int | None = None
    successful_jobs_history_limit: int = 0
    failed_jobs_history_limit: int = 0
    suspend: bool = False
    workflow_spec: WorkflowSpec = Field(default_factory=WorkflowSpec)


class CronWorkflow(Doc):
    api_version: str = ""
    kind: str = ""
    metadata: Metadata = Field(default_factory=Metadata)
    spec: CronWorkflowSpec = Field(default_factory=CronWorkflowSpec)
