"""How the API words a failure: one error code per kind of Aether error, as a structured reply.

Shared by the API service, the web UI's JSON endpoints and the commands engines forward to each other.
"""

from __future__ import annotations

from aether_es.adapters.nats.retry import TRANSIENT
from aether_es.api import messages as m
from aether_es.errors import (
    AetherError,
    ApiError,
    ConflictError,
    InvalidStateError,
    NotFoundError,
    NotSupportedError,
    ValidationError,
)

STATUS = {
    "invalid_argument": "400",
    "not_found": "404",
    "invalid_state": "409",
    "conflict": "409",
    "not_supported": "501",
    "unavailable": "503",
    "internal": "500",
}
"""The `Nats-Service-Error-Code` header of each error code (HTTP-like, as NATS micro services use)."""


def invalid(field: str | None, detail: str) -> ValidationError:
    """A ValidationError naming the request field at fault."""
    error = ValidationError(detail)
    error.field = field
    return error


CODES: dict[type[AetherError], m.ErrorCode] = {
    ValidationError: "invalid_argument",
    NotFoundError: "not_found",
    ConflictError: "conflict",  # before InvalidStateError, of which it is a kind
    InvalidStateError: "invalid_state",
    NotSupportedError: "not_supported",
}
"""The error code of each kind of Aether error; a client raises the same kind back (`client.raise_error`)."""


def error_reply(exc: BaseException) -> m.ErrorReply:
    """The structured reply for an exception: Aether's errors by kind, NATS trouble as unavailable, the rest
    as internal (with the exception's type and text, never a traceback)."""
    code = next((code for kind, code in CODES.items() if isinstance(exc, kind)), None)
    if code is not None:
        assert isinstance(exc, AetherError)
        return m.ErrorReply(error=m.ErrorDetail(code=code, message=str(exc), field=exc.field))
    if isinstance(exc, ApiError) and exc.code in STATUS:  # another engine's answer, passed on as it came
        detail = {"code": exc.code, "message": str(exc), "field": exc.field}
        return m.ErrorReply(error=m.ErrorDetail.model_validate(detail))
    if isinstance(exc, TRANSIENT):
        message = f"aether: unavailable: {describe(exc)}; try again"
        return m.ErrorReply(error=m.ErrorDetail(code="unavailable", message=message, field=None))
    message = f"aether: internal error: {describe(exc)}"
    return m.ErrorReply(error=m.ErrorDetail(code="internal", message=message, field=None))


def describe(exc: BaseException) -> str:
    """An exception's type and text, for a message (never a traceback)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
