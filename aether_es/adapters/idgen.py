"""Workflow-run id generators (`ports.idgen.IdGenerator`).

Ids end up in NATS subjects and KV keys, so they use only `[a-z0-9]`. The default is ULID-like:
unique across processes without coordination and sortable by creation time, which keeps run
listings and stream keys in a natural order. The counter matches Aether's AtomicIDGen for tests.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

from aether_es.ports.idgen import IdContext

__all__ = ["CROCKFORD_ALPHABET", "CounterIdGenerator", "TimeOrderedIdGenerator"]

# Crockford base32, lowercase. Its characters are in ascending ASCII order, so text order = numeric order.
CROCKFORD_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

_TIME_BITS = 48
_RANDOM_BITS = 80
_ID_LENGTH = 26  # ceil(128 / 5)
_MAX_RANDOM = (1 << _RANDOM_BITS) - 1
_MAX_TIME = (1 << _TIME_BITS) - 1


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _encode(number: int) -> str:
    chars = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, 32)
        chars.append(CROCKFORD_ALPHABET[digit])
    return "".join(reversed(chars))


class TimeOrderedIdGenerator:
    """26-character ids: 48-bit millisecond timestamp then 80 random bits, in lowercase Crockford base32.

    Within one generator ids strictly increase even if the clock stalls or steps back: in that case the
    previous random part is incremented (ULID "monotonic" mode). Across processes the random bits make
    collisions negligible and the timestamp keeps ids roughly ordered by creation time.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        random_bits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock_ms = clock_ms
        self._random_bits = random_bits
        self._lock = threading.Lock()
        self._last_time = -1
        self._last_random = 0

    def generate(self, context: IdContext) -> str:
        with self._lock:
            now = min(max(self._clock_ms(), 0), _MAX_TIME)
            if now > self._last_time:
                self._last_time, self._last_random = now, self._random_bits(_RANDOM_BITS) & _MAX_RANDOM
            elif self._last_random < _MAX_RANDOM:
                self._last_random += 1
            elif self._last_time < _MAX_TIME:
                # Random space of this millisecond exhausted: borrow the next millisecond.
                self._last_time, self._last_random = self._last_time + 1, 0
            else:  # pragma: no cover - year 10889
                raise OverflowError("time-ordered id space exhausted")
            return _encode((self._last_time << _RANDOM_BITS) | self._last_random)


class CounterIdGenerator:
    """Decimal counter ("1", "2", ...) ignoring the context, like Aether's AtomicIDGen; thread-safe."""

    def __init__(self, start: int = 1) -> None:
        self._next = start
        self._lock = threading.Lock()

    def generate(self, context: IdContext) -> str:
        with self._lock:
            value, self._next = self._next, self._next + 1
        return str(value)
