"""How runs map to partitions and partitions to engines: stable, complete, balanced, and moving little."""

from __future__ import annotations

import math
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aether_es.cluster.partitions import SLOTS, assign, check_partitions, partition_of, slot_of, slots_of

engines = st.lists(st.text("abcdefghij0123456789-", min_size=1, max_size=12), min_size=1, max_size=9, unique=True)
partitions = st.integers(min_value=1, max_value=SLOTS)


def test_a_runs_slot_is_crc32_of_its_id_so_any_language_can_compute_it() -> None:
    assert slot_of("hello-pipeline-01") == zlib.crc32(b"hello-pipeline-01") % SLOTS
    assert slot_of("abc") == 0x352441C2 % SLOTS  # CRC-32/ISO-HDLC of "abc", as every implementation gives it


@given(partitions, st.text(min_size=1, max_size=40))
def test_a_partition_holds_exactly_the_slots_that_map_to_it(count: int, run_id: str) -> None:
    assert slot_of(run_id) in slots_of(partition_of(run_id, count), count)
    assert sorted(slot for p in range(count) for slot in slots_of(p, count)) == list(range(SLOTS))


@given(partitions, engines)
def test_every_partition_has_one_owner_and_no_engine_more_than_its_fair_share(count: int, names: list[str]) -> None:
    shares = assign(count, names)
    owned = [p for share in shares.values() for p in share]
    assert sorted(owned) == list(range(count))
    assert max(len(share) for share in shares.values()) <= math.ceil(count / len(names))


@given(partitions, engines)
def test_every_engine_computes_the_same_assignment_whatever_order_it_lists_the_members(
    count: int, names: list[str]
) -> None:
    assert assign(count, names) == assign(count, list(reversed(names)))


def test_an_engine_leaving_moves_its_own_share_and_little_else() -> None:
    """Three engines and eight partitions (the default), 300 memberships: the survivors lose fewer than one
    partition on average to each other (their fair share grows, so one may take what another had), never
    more than two."""
    losses = []
    for sample in range(300):
        names = [f"engine-{sample}-{n}" for n in range(3)]
        before, after = assign(8, names), assign(8, names[1:])
        losses.append(sum(1 for engine in names[1:] for p in before[engine] if p not in after[engine]))
    assert sum(losses) / len(losses) < 1 and max(losses) <= 2


def test_a_partition_count_outside_the_slots_is_refused_naming_the_range() -> None:
    with pytest.raises(ValueError, match="partitions must be from 1 to 64, not 0"):
        check_partitions(0)
    assert assign(4, []) == {}
