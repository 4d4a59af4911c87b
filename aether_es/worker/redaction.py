"""Keeping secret values out of what workers report.

Secret inputs reach an executor resolved, marked `secret` in the assignment. Whatever the executor returns
is scrubbed of those values before it is reported, so an executor that echoes or logs its inputs into its
outputs cannot put a secret into the run's history.

Each secret is looked for as written and in the encodings a command most often applies: base64 (standard
and URL-safe, with or without padding), hex, URL-encoding (`quote` and `quote_plus`), in any letter case.
One compiled alternation per assignment, longest first, keeps the scrub linear in the size of the output.
What it cannot find (a secret split, reversed, hashed, partly printed, or re-encoded inside a longer text at
an unaligned offset) is listed in docs/security.md.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote, quote_plus

from aether_es.ports.wire import ResultArtifact, TaskAssignment, TaskResult

REDACTED = "[redacted]"
MIN_ENCODED = 4
"""Shorter secrets are scrubbed as written (any case) only: their encodings are too short to tell apart
from ordinary text."""


def secret_values(assignment: TaskAssignment) -> list[str]:
    """The resolved secret strings of an assignment, longest first so overlapping values scrub fully."""
    values = {str(p.value) for p in assignment.inputs if p.secret and p.value not in (None, "")}
    return sorted(values, key=len, reverse=True)


def encodings(secret: str) -> set[str]:
    """The secret as written and in the common encodings it may be printed in."""
    if len(secret) < MIN_ENCODED:
        return {secret}
    raw = secret.encode("utf-8", "surrogatepass")
    standard = base64.b64encode(raw).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(raw).decode("ascii")
    return {
        secret,
        standard,
        standard.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        raw.hex(),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
    }


def secret_pattern(secrets: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for every form of every secret, longest first; None without secrets."""
    forms = {form for secret in secrets for form in encodings(secret)}
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)), re.IGNORECASE)


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    return value


def redact(result: TaskResult, assignment: TaskAssignment) -> TaskResult:
    pattern = secret_pattern(secret_values(assignment))
    if pattern is None:
        return result
    return result.model_copy(
        update={
            "message": _scrub(result.message, pattern),
            "parameters": [p.model_copy(update={"value": _scrub(p.value, pattern)}) for p in result.parameters],
            "artifacts": [ResultArtifact.model_validate(_scrub(a.model_dump(), pattern)) for a in result.artifacts],
        }
    )
