"""Values by reference: what `externalise` takes out, `internalise` puts back exactly, and nothing is left
over the inline limit but the root."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aether_es.errors import DocumentError
from aether_es.events.references import (
    UnresolvedReference,
    externalise,
    has_references,
    internalise,
    reference_of,
    references,
)
from aether_es.limits import Limits
from aether_es.model.loading import check_document

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)


def _largest_inline(value: Any) -> int:
    """The JSON size of the largest non-root value that is not a reference."""
    sizes: list[int] = []

    def walk(node: Any) -> None:
        if reference_of(node) is not None:
            return
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if reference_of(child) is None:
                sizes.append(len(orjson.dumps(child)))
            walk(child)

    walk(value)
    return max(sizes, default=0)


@settings(max_examples=200)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=6), limit=st.integers(150, 2000))
def test_round_trip_and_nothing_inline_over_the_limit(value: dict[str, Any], limit: int) -> None:
    shrunk, blobs = externalise(value, limit, "b")
    assert internalise(shrunk, blobs) == value
    assert _largest_inline(shrunk) <= limit
    for blob in blobs.values():  # a stored container keeps its members within the limit too
        assert _largest_inline(orjson.loads(blob)) <= limit
    assert has_references(orjson.dumps(shrunk)) == bool(blobs)


def test_the_same_value_is_stored_once() -> None:
    big = "x" * 1000
    shrunk, blobs = externalise({"a": big, "b": [big, big]}, 1000, "values")
    assert len(blobs) == 1
    (ref,) = references(shrunk)
    assert ref.size == len(orjson.dumps(big)) and ref.digest == f"sha256:{ref.key}" and ref.bucket == "values"
    assert shrunk["a"] == shrunk["b"][0] == ref.to_json()


def test_small_values_stay_inline() -> None:
    value = {"type": "TaskSucceeded", "outputs": {"result": "small"}}
    assert externalise(value, 1000, "b") == (value, {})


def test_a_blob_that_does_not_match_its_reference_is_refused() -> None:
    shrunk, blobs = externalise({"a": "x" * 500}, 100, "b")
    (key,) = blobs
    with pytest.raises(UnresolvedReference, match="digest"):
        internalise(shrunk, {key: orjson.dumps("y" * 500)})
    with pytest.raises(UnresolvedReference, match="bytes, its reference says"):
        internalise(shrunk, {key: b'"short"'})
    with pytest.raises(UnresolvedReference, match="was not fetched"):
        internalise(shrunk, {})


def test_document_limits_name_the_limit_and_its_variable() -> None:
    limits = Limits(document_bytes=100, nesting_depth=3)
    with pytest.raises(DocumentError, match=r"the document is 1\d\d bytes, over the limit of 100 bytes .*"):
        check_document({"spec": "s" * 100}, limits)
    with pytest.raises(DocumentError, match=r"nesting is 4, over the limit of 3 .*AETHER_LIMIT_NESTING_DEPTH"):
        check_document(b'{"a": [[{"b": 1}]]}', limits)
    check_document('{"a": [[1]]}', limits)


def test_many_small_members_are_stored_together_not_one_by_one() -> None:
    many = [{"n": n} for n in range(10_000)]
    shrunk, blobs = externalise({"list": many}, 1000, "b")
    assert len(blobs) == 1 and reference_of(shrunk["list"]) is not None
    assert internalise(shrunk, blobs) == {"list": many}
