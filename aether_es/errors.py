"""The errors users see, worded as Aether words them: `aether: <kind>: <detail>`."""

from __future__ import annotations


class AetherError(Exception):
    """Base of every error the engine returns on purpose."""

    kind = ""
    field: str | None = None
    """The request field at fault, when the error came from the API and one is."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"aether: {self.kind}: {detail}" if self.kind else f"aether: {detail}")


class ValidationError(AetherError):
    """The document or call is invalid; nothing was written."""

    kind = "validation error"


class InvalidStateError(AetherError):
    kind = "invalid state"


class ConflictError(InvalidStateError):
    """What the call would create exists already, made otherwise (the detail names it)."""

    kind = "conflict"


class NotSupportedError(AetherError):
    kind = "not supported"


class NotFoundError(AetherError):
    kind = "not found"


class DocumentError(ValidationError):
    """The input is not a well-formed document: bad JSON, or a value of the wrong type at a JSON path."""


class ApiError(AetherError):
    """The API could not answer: no engine serves it (`unavailable`), or the engine failed (`internal`)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        Exception.__init__(self, message)
        self.detail = message
        self.code = code
        self.field = field
