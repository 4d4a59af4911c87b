"""Big values by reference: a JSON value too large to travel inline is replaced by a small reference.

A reference is a JSON object with one distinctive key, `{"$aetherRef": {"bucket", "key", "size", "digest"}}`,
naming the value's JSON bytes in a content-addressed store (the key is the SHA-256 hex of those bytes), so
a value passed to many tasks is stored once. These functions are pure: `externalise` says which blobs to
store, `internalise` puts fetched blobs back after checking their size and digest. The adapters that move
messages do the storing and fetching; messages with no reference (`has_references` on their raw bytes) take
no extra work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

MARKER = "$aetherRef"
_MARKER_BYTES = b'"' + MARKER.encode() + b'"'


class PayloadTooLarge(ValueError):
    """A message that is over the server's payload limit even with its big values by reference."""


class UnresolvedReference(ValueError):
    """A reference that cannot be resolved: missing, or its blob does not match its size or digest."""


@dataclass(frozen=True, slots=True)
class Reference:
    bucket: str
    key: str
    size: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {MARKER: {"bucket": self.bucket, "key": self.key, "size": self.size, "digest": self.digest}}

    def describe(self) -> str:
        return f"by reference ({self.size:,} bytes, {self.digest})"


def reference_of(value: Any) -> Reference | None:
    """The reference `value` is, or None if it is an ordinary value."""
    if not (isinstance(value, dict) and len(value) == 1 and MARKER in value):
        return None
    body = value[MARKER]
    try:
        return Reference(
            bucket=str(body["bucket"]), key=str(body["key"]), size=int(body["size"]), digest=str(body["digest"])
        )
    except (KeyError, TypeError, ValueError):
        raise UnresolvedReference(f"malformed value reference {_short(value)}") from None


def has_references(data: bytes) -> bool:
    """Whether raw JSON bytes may hold a reference (a substring test: false positives are merely slower)."""
    return _MARKER_BYTES in data


def blob_reference(bucket: str, blob: bytes) -> Reference:
    digest = hashlib.sha256(blob).hexdigest()
    return Reference(bucket=bucket, key=digest, size=len(blob), digest=f"sha256:{digest}")


WORTH_A_REFERENCE = 1024
"""Bytes under which a member is never replaced on its own: a reference takes about 200."""


def externalise(value: Any, limit: int, bucket: str, *, keep_root: bool = True) -> tuple[Any, dict[str, bytes]]:
    """`value` with the largest sub-values whose JSON is over `limit` bytes replaced by references, and the
    blobs (JSON bytes by key) to store. A container over the limit keeps its small members inline and has its
    largest ones replaced until it fits (never those smaller than `WORTH_A_REFERENCE`); one that only fits as
    a whole is stored whole (its blob may hold references itself). With `keep_root` the top-level container
    itself stays inline (an event's fields, a report's envelope), whatever its size. Sizes are computed once
    per node, so the cost is linear."""
    blobs: dict[str, bytes] = {}

    def store(node: Any) -> tuple[Any, int]:
        blob = orjson.dumps(node)
        ref = blob_reference(bucket, blob)
        blobs[ref.key] = blob
        encoded = ref.to_json()
        return encoded, len(orjson.dumps(encoded))

    def shrink(node: Any, root: bool) -> tuple[Any, int]:
        if isinstance(node, dict | list):
            keyed = isinstance(node, dict)
            children = list(node.values()) if isinstance(node, dict) else node
            members = [shrink(child, False) for child in children]
            keys = [len(orjson.dumps(key)) + 1 for key in node] if keyed else [0] * len(members)
            size = _container_size([k + s for k, (_, s) in zip(keys, members, strict=True)])
            for i in sorted(range(len(members)), key=lambda i: members[i][1], reverse=True):
                child, child_size = members[i]
                if size <= limit or child_size <= WORTH_A_REFERENCE:
                    break
                if reference_of(child) is None:
                    members[i] = store(child)
                    size += members[i][1] - child_size
            values = [child for child, _ in members]
            shrunk: Any = dict(zip(node, values, strict=True)) if keyed else values
        else:
            shrunk, size = node, len(orjson.dumps(node))
        if size > limit and not root:
            return store(shrunk)
        return shrunk, size

    shrunk, _ = shrink(value, keep_root)
    return shrunk, blobs


@dataclass
class Gathering:
    """Externalises one value after another (the records of a reply), gathering the blobs they all need."""

    limit: int
    bucket: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    def externalise(self, value: Any) -> Any:
        shrunk, blobs = externalise(value, self.limit, self.bucket)
        self.blobs.update(blobs)
        return shrunk


def _container_size(member_sizes: list[int]) -> int:
    """Bytes of a JSON array or object whose members (with their keys) take these many bytes."""
    return 2 + sum(member_sizes) + max(0, len(member_sizes) - 1)


def references(value: Any) -> list[Reference]:
    """Every reference in `value` (not inside the blobs it names), each once."""
    found: dict[str, Reference] = {}

    def walk(node: Any) -> None:
        ref = reference_of(node)
        if ref is not None:
            found.setdefault(ref.key, ref)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return list(found.values())


def verify(ref: Reference, blob: bytes) -> None:
    """Raise `UnresolvedReference` unless `blob` is what `ref` names (its size and digest)."""
    if len(blob) != ref.size:
        raise UnresolvedReference(
            f"value {ref.key} in bucket {ref.bucket!r} is {len(blob)} bytes, its reference says {ref.size}"
        )
    actual = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    if actual != ref.digest:
        raise UnresolvedReference(
            f"value {ref.key} in bucket {ref.bucket!r} has digest {actual}, its reference says {ref.digest}"
        )


def internalise(value: Any, blobs: Mapping[str, bytes]) -> Any:
    """`value` with every reference replaced by the value its blob holds (verified), recursively: a blob may
    itself hold references, whose blobs must be in `blobs` too."""
    parsed: dict[str, Any] = {}

    def resolve(node: Any) -> Any:
        ref = reference_of(node)
        if ref is not None:
            if ref.key not in parsed:
                blob = blobs.get(ref.key)
                if blob is None:
                    raise UnresolvedReference(f"value {ref.key} in bucket {ref.bucket!r} was not fetched")
                verify(ref, blob)
                parsed[ref.key] = resolve(orjson.loads(blob))
            return parsed[ref.key]
        if isinstance(node, dict):
            return {key: resolve(child) for key, child in node.items()}
        if isinstance(node, list):
            return [resolve(child) for child in node]
        return node

    return resolve(value)


def _short(value: Any, limit: int = 200) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[:limit] + "..."
