"""The API's message models: strict requests, replies that a newer engine may grow."""

from __future__ import annotations

import pydantic
import pytest

from aether_es.api import messages as m


def test_every_reply_ignores_keys_it_does_not_know() -> None:
    for operation, (_, reply) in m.OPERATIONS.items():
        assert issubclass(reply, m.Reply), operation
    page = m.ListRunsReply.model_validate_json(b'{"runs": [], "nextPageToken": "", "addedLater": 1}')
    assert page.next_page_token == ""
    assert m.Done.model_validate_json(b'{"addedLater": true}') == m.Done()
    error = m.ErrorReply.model_validate_json(
        b'{"error": {"code": "not_found", "message": "m", "field": null, "hint": "h"}}'
    )
    assert error.error.code == "not_found"


def test_a_request_with_an_unknown_key_is_refused_naming_it() -> None:
    with pytest.raises(pydantic.ValidationError, match="runIDd"):
        m.GetRunRequest.model_validate_json(b'{"runID": "r", "runIDd": "r"}')
