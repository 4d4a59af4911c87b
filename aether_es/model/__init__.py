"""The aether/v1 document model: documents, defaults, validation, loading and durations."""

from aether_es.model.defaults import fill_cron_defaults, fill_defaults
from aether_es.model.documents import CronWorkflow, Workflow
from aether_es.model.durations import (
    format_go_duration,
    parse_duration,
    parse_duration_ns,
    parse_go_duration_strict,
)
from aether_es.model.gofmt import go_quote
from aether_es.model.loading import load_cron_workflow, load_document, load_workflow
from aether_es.model.validation import validate_cron_workflow, validate_workflow

__all__ = [
    "CronWorkflow",
    "Workflow",
    "fill_cron_defaults",
    "fill_defaults",
    "format_go_duration",
    "go_quote",
    "load_cron_workflow",
    "load_document",
    "load_workflow",
    "parse_duration",
    "parse_duration_ns",
    "parse_go_duration_strict",
    "validate_cron_workflow",
    "validate_workflow",
]
