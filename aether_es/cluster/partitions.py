"""Which engine decides which runs: runs hash into slots, slots into partitions, partitions onto engines.

A run's **slot** (one of `SLOTS`) is a fixed function of its id, so anyone publishing a report (a worker, a
client, the timeout watcher) names the slot in the subject without knowing how the system is partitioned. A
system has `partitions` (from 1 to `SLOTS`, fixed when it is created); partition `p` holds the slots `s` with
`s % partitions == p`, and its reports are consumed by its owner alone.

Partitions are spread over the live engines by rendezvous hashing with a bounded load: every engine ranks the
engines for each partition by a hash of both names, and a partition goes to the best-ranked engine that has
fewer than its fair share. Every engine computes the same assignment from the same membership, and an engine
joining or leaving moves little more than its own share.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Sequence

SLOTS = 64
DEFAULT_PARTITIONS = 8


def slot_of(run_id: str) -> int:
    """CRC-32 (as zlib, Go's hash/crc32 and most languages compute it) of the run id's UTF-8, modulo `SLOTS`."""
    return zlib.crc32(run_id.encode()) % SLOTS


def partition_of(run_id: str, partitions: int) -> int:
    return slot_of(run_id) % partitions


def slots_of(partition: int, partitions: int) -> list[int]:
    return list(range(partition, SLOTS, partitions))


def check_partitions(partitions: int) -> int:
    if not 1 <= partitions <= SLOTS:
        raise ValueError(f"partitions must be from 1 to {SLOTS}, not {partitions}")
    return partitions


def _rank(engine: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{engine}/{partition}".encode(), digest_size=8).digest()


def assign(partitions: int, engines: Sequence[str]) -> dict[str, frozenset[int]]:
    """Each engine's share of the partitions; every partition has exactly one engine (none without engines)."""
    members = sorted(set(engines))
    if not members:
        return {}
    cap = math.ceil(partitions / len(members))
    shares: dict[str, set[int]] = {engine: set() for engine in members}
    for partition in range(partitions):
        for engine in sorted(members, key=lambda e: _rank(e, partition), reverse=True):
            if len(shares[engine]) < cap:
                shares[engine].add(partition)
                break
    return {engine: frozenset(share) for engine, share in shares.items()}
