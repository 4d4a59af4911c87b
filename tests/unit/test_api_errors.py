"""How the API words a failure, including one another engine answered with (a forwarded command)."""

from __future__ import annotations

from aether_es.api.errors import error_reply
from aether_es.errors import ApiError, ConflictError, ValidationError


def test_an_owners_unavailable_answer_is_passed_on_as_unavailable_not_as_an_internal_error() -> None:
    detail = error_reply(ApiError("unavailable", "aether: unavailable: no engine owns partition 3 now")).error
    assert (detail.code, detail.message) == ("unavailable", "aether: unavailable: no engine owns partition 3 now")


def test_each_kind_of_error_has_its_code_and_anything_else_is_internal_naming_its_type() -> None:
    assert error_reply(ValidationError("bad")).error.code == "invalid_argument"
    assert error_reply(ConflictError("taken")).error.code == "conflict"
    assert error_reply(ApiError("weird", "aether: weird")).error.code == "internal"
    assert error_reply(KeyError("x")).error.message == "aether: internal error: KeyError: 'x'"
