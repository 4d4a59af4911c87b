"""Value shapes carried by events and shown in views: outputs and metrics, as Aether persists them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from aether_es.model.documents import Artifact, Parameter


class Value(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Metrics(Value):
    started_at: str | None = None
    finished_at: str | None = None
    duration: str | None = None
    retries: int | None = None


class ResultOutputs(Value):
    """Aether's Outputs: phase, metrics and the executor's code, message, parameters and artifacts."""

    phase: str | None = None
    metrics: Metrics | None = None
    code: int | None = None
    message: str | None = None
    parameters: list[Parameter] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
