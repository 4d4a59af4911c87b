"""Run-id generators (ports.idgen.IdGenerator)."""

from __future__ import annotations

import re
import threading
import time

from hypothesis import given
from hypothesis import strategies as st

from aether_es.adapters.idgen import CROCKFORD_ALPHABET, CounterIdGenerator, TimeOrderedIdGenerator
from aether_es.ports.idgen import IdContext, IdGenerator

CTX = IdContext()
ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def _decode(text: str) -> int:
    number = 0
    for char in text:
        number = number * 32 + CROCKFORD_ALPHABET.index(char)
    return number


def test_alphabet_is_crockford_lowercase_and_ascii_sorted() -> None:
    assert len(CROCKFORD_ALPHABET) == 32
    assert list(CROCKFORD_ALPHABET) == sorted(CROCKFORD_ALPHABET)
    assert not set("ilou") & set(CROCKFORD_ALPHABET)


def test_time_ordered_shape_and_timestamp() -> None:
    gen: IdGenerator = TimeOrderedIdGenerator()
    before = time.time_ns() // 1_000_000
    value = gen.generate(IdContext(workflow_run_id="x", task_name="t"))
    after = time.time_ns() // 1_000_000
    assert ID_RE.match(value)
    assert before <= _decode(value) >> 80 <= after


def test_time_ordered_layout_with_fixed_clock_and_random() -> None:
    gen = TimeOrderedIdGenerator(clock_ms=lambda: 1, random_bits=lambda bits: 5)
    first = gen.generate(CTX)
    assert _decode(first) == (1 << 80) | 5
    # Like a ULID: 10 characters of timestamp, then 16 of randomness.
    assert (first[:10], first[10:]) == ("0000000001", "0" * 15 + "5")
    assert _decode(gen.generate(CTX)) == (1 << 80) | 6


def test_same_millisecond_and_clock_going_back_stay_increasing() -> None:
    times = iter([10, 10, 9, 11])
    gen = TimeOrderedIdGenerator(clock_ms=lambda: next(times), random_bits=lambda bits: 0)
    ids = [gen.generate(CTX) for _ in range(4)]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [_decode(i) >> 80 for i in ids] == [10, 10, 10, 11]


def test_random_overflow_borrows_next_millisecond() -> None:
    gen = TimeOrderedIdGenerator(clock_ms=lambda: 7, random_bits=lambda bits: (1 << bits) - 1)
    first, second = gen.generate(CTX), gen.generate(CTX)
    assert second > first
    assert _decode(second) == 8 << 80


def test_later_millisecond_sorts_after_regardless_of_random() -> None:
    times = iter([100, 101])
    randoms = iter([(1 << 80) - 1, 0])
    gen = TimeOrderedIdGenerator(clock_ms=lambda: next(times), random_bits=lambda bits: next(randoms))
    assert gen.generate(CTX) < gen.generate(CTX)


@given(st.integers(min_value=1, max_value=300))
def test_time_ordered_unique_and_sorted(count: int) -> None:
    gen = TimeOrderedIdGenerator()
    ids = [gen.generate(CTX) for _ in range(count)]
    assert ids == sorted(ids)
    assert len(set(ids)) == count
    assert all(ID_RE.match(i) for i in ids)


@given(st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=1, max_size=50))
def test_time_ordered_monotonic_for_any_clock(times: list[int]) -> None:
    clock = iter(times)
    gen = TimeOrderedIdGenerator(clock_ms=lambda: next(clock))
    ids = [gen.generate(CTX) for _ in times]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_independent_generators_do_not_collide() -> None:
    a, b = TimeOrderedIdGenerator(), TimeOrderedIdGenerator()
    ids = {g.generate(CTX) for _ in range(500) for g in (a, b)}
    assert len(ids) == 1000


def test_time_ordered_thread_safe() -> None:
    gen = TimeOrderedIdGenerator()
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        local = [gen.generate(CTX) for _ in range(200)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1600


def test_counter_defaults_and_ignores_context() -> None:
    gen: IdGenerator = CounterIdGenerator()
    assert gen.generate(CTX) == "1"
    assert gen.generate(IdContext(workflow_run_id="w", workflow_kind="CronWorkflow")) == "2"
    assert gen.generate(CTX) == "3"


def test_counter_start() -> None:
    gen = CounterIdGenerator(start=41)
    assert [gen.generate(CTX) for _ in range(3)] == ["41", "42", "43"]


@given(st.integers(min_value=-1000, max_value=10**12), st.integers(min_value=1, max_value=50))
def test_counter_sequence(start: int, count: int) -> None:
    gen = CounterIdGenerator(start=start)
    assert [gen.generate(CTX) for _ in range(count)] == [str(start + i) for i in range(count)]


def test_counter_thread_safe() -> None:
    gen = CounterIdGenerator()
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        local = [gen.generate(CTX) for _ in range(500)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(r) for r in results) == list(range(1, 4001))
