"""Keeping secret values out of what workers report.

Secret inputs reach an executor resolved, marked `secret` in the assignment. Whatever the executor returns
is scrubbed of those values before it is reported, so an executor that echoes or logs its inputs into its
outputs cannot put a secret into the run's history.
"""

from __future__ import annotations

from typing import Any

from aether_es.ports.wire import ResultArtifact, TaskAssignment, TaskResult

REDACTED = "[redacted]"


def secret_values(assignment: TaskAssignment) -> list[str]:
    """The resolved secret strings of an assignment, longest first so overlapping values scrub fully."""
    values = {str(p.value) for p in assignment.inputs if p.secret and p.value not in (None, "")}
    return sorted(values, key=len, reverse=True)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    return value


def redact(result: TaskResult, assignment: TaskAssignment) -> TaskResult:
    secrets = secret_values(assignment)
    if not secrets:
        return result
    return result.model_copy(
        update={
            "message": _scrub(result.message, secrets),
            "parameters": [p.model_copy(update={"value": _scrub(p.value, secrets)}) for p in result.parameters],
            "artifacts": [ResultArtifact.model_validate(_scrub(a.model_dump(), secrets)) for a in result.artifacts],
        }
    )
