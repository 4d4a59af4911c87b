"""Durations as Aether reads and prints them.

Aether's `ParseDuration` is Go's `time.ParseDuration` plus a `<n>d` form, and an unparsable timeout silently
means "no deadline"; durations it reports (metrics) are Go's `Duration.String()` rounded to milliseconds. Both
are reproduced exactly so that timeouts fire, and reports read, as they do in Aether.
"""

from __future__ import annotations

import math
import re

NS_PER_SECOND = 1_000_000_000
_MAX_NS = (1 << 63) - 1
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
}
_AETHER_FALLBACK = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_FALLBACK_UNITS = {"ms": 1_000_000, "s": NS_PER_SECOND, "m": 60 * NS_PER_SECOND, "h": 3600 * NS_PER_SECOND}
_FALLBACK_UNITS["d"] = 24 * _FALLBACK_UNITS["h"]


def parse_duration(text: str) -> float | None:
    """Seconds for an Aether duration; 0 for ""; None when Aether would reject it (meaning "no deadline")."""
    nanos = parse_duration_ns(text)
    return None if nanos is None else nanos / NS_PER_SECOND


def parse_duration_ns(text: str) -> int | None:
    """Aether's `internal.ParseDuration` in integer nanoseconds; None instead of an error."""
    if text == "":
        return 0
    try:
        nanos = go_parse_duration_ns(text)
    except ValueError:
        match = _AETHER_FALLBACK.fullmatch(text)
        if match is None:
            return None
        nanos = int(match[1]) * _FALLBACK_UNITS[match[2]]
        # Go would wrap around int64 here; a wrapped (possibly negative) deadline helps nobody.
        return nanos if nanos <= _MAX_NS else None
    return nanos if nanos >= 0 else None


def parse_go_duration_strict(text: str) -> float:
    """Seconds for a Go duration literal (no `d` unit); ValueError with Go's message otherwise."""
    return go_parse_duration_ns(text) / NS_PER_SECOND


def go_parse_duration_ns(text: str) -> int:
    """Go's `time.ParseDuration` in nanoseconds, with its exact error messages (negative values allowed)."""
    invalid = ValueError("time: invalid duration " + time_quote(go_bytes(text)))
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise invalid
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise invalid
        whole, rest, consumed = _leading_int(rest)
        if whole is None:
            raise invalid
        fraction, scale, fraction_seen = 0, 1.0, False
        if rest[:1] == ".":
            fraction, scale, rest, fraction_seen = _leading_fraction(rest[1:])
        if not consumed and not fraction_seen:
            raise invalid
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        if end == 0:
            raise ValueError("time: missing unit in duration " + time_quote(go_bytes(text)))
        unit_text, rest = rest[:end], rest[end:]
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise ValueError(
                f"time: unknown unit {time_quote(go_bytes(unit_text))} in duration {time_quote(go_bytes(text))}"
            )
        if whole > (1 << 63) // unit:
            raise invalid
        value = whole * unit
        if fraction > 0:
            value += int(float(fraction) * (float(unit) / scale))
            if value > 1 << 63:
                raise invalid
        total += value
        if total > 1 << 63:
            raise invalid
    if negative:
        return -total
    if total > _MAX_NS:
        raise invalid
    return total


def _leading_int(text: str) -> tuple[int | None, str, bool]:
    """Go's `leadingInt`: the leading digits' value (None on overflow), the rest, whether any were read."""
    value = 0
    i = 0
    while i < len(text) and "0" <= text[i] <= "9":
        if value > (1 << 63) // 10:
            return None, text, True
        value = value * 10 + ord(text[i]) - 48
        if value > 1 << 63:
            return None, text, True
        i += 1
    return value, text[i:], i > 0


def _leading_fraction(text: str) -> tuple[int, float, str, bool]:
    """Go's `leadingFraction`: digits after the point, stopping (silently) at the precision limit."""
    value, scale, overflow = 0, 1.0, False
    i = 0
    while i < len(text) and "0" <= text[i] <= "9":
        if not overflow:
            if value > _MAX_NS // 10:
                overflow = True
            else:
                candidate = value * 10 + ord(text[i]) - 48
                if candidate > 1 << 63:
                    overflow = True
                else:
                    value, scale = candidate, scale * 10
        i += 1
    return value, scale, text[i:], i > 0


def format_go_duration(seconds: float) -> str:
    """`time.Duration(seconds).Round(time.Millisecond).String()`, e.g. `0s`, `500ms`, `2m3.5s`, `1h0m0s`."""
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format a non-finite duration: {seconds!r}")
    return format_go_duration_ns(_round_half_away(round(seconds * NS_PER_SECOND), 1_000_000))


def _round_half_away(nanos: int, multiple: int) -> int:
    """Go's `Duration.Round`: to the nearest multiple, halves away from zero."""
    remainder = abs(nanos) % multiple
    magnitude = abs(nanos) - remainder + (multiple if remainder * 2 >= multiple else 0)
    return -magnitude if nanos < 0 else magnitude


def format_go_duration_ns(nanos: int) -> str:
    """Go's `Duration.String()` for a nanosecond count (no rounding)."""
    magnitude = abs(nanos)
    sign = "-" if nanos < 0 else ""
    if magnitude == 0:
        return "0s"
    if magnitude < NS_PER_SECOND:
        for limit, precision, unit in ((1_000, 0, "ns"), (1_000_000, 3, "\u00b5s"), (NS_PER_SECOND, 6, "ms")):
            if magnitude < limit:
                whole, fraction = _split_fraction(magnitude, precision)
                return f"{sign}{whole}{fraction}{unit}"
    whole_seconds, fraction = _split_fraction(magnitude, 9)
    text = f"{whole_seconds % 60}{fraction}s"
    minutes = whole_seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _split_fraction(value: int, precision: int) -> tuple[int, str]:
    """Go's `fmtFrac`: integer part and `.digits` without trailing zeros (nothing when the fraction is 0)."""
    scale = 10**precision
    digits = f"{value % scale:0{precision}d}".rstrip("0") if precision else ""
    return value // scale, ("." + digits) if digits else ""


def go_bytes(text: str) -> bytes:
    """The UTF-8 Go would hold for `text`: its JSON decoder turns lone surrogates into U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text).encode("utf-8")


def time_quote(value: bytes) -> str:
    """The Go `time` package's `quote`: `%q`-like for ASCII, every non-ASCII byte shown as `\\xNN`."""
    out = ['"']
    i = 0
    while i < len(value):
        byte = value[i]
        if byte < 0x80:
            out.append(f"\\x{byte:02x}" if byte < 0x20 else ("\\" if byte in b'"\\' else "") + chr(byte))
            i += 1
            continue
        size = _rune_size(value, i)
        width = size
        if size == 1 or value[i : i + 3] == b"\xef\xbf\xbd":  # Go's RuneError branch, off-by-one included
            width = 3 if i + 2 < len(value) and value[i : i + 3] == b"\xef\xbf\xbd" else 1
        out.extend(f"\\x{b:02x}" for b in value[i : i + width])
        i += size
    out.append('"')
    return "".join(out)


def _rune_size(value: bytes, i: int) -> int:
    """Bytes of the UTF-8 rune at `i`, or 1 where the bytes are not valid UTF-8 (as Go's `range` steps)."""
    for size in (2, 3, 4):
        try:
            value[i : i + size].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return size
    return 1
