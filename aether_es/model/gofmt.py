"""Go `%v` and `%q` renderings and truthiness (spec §2.4, §8, §9 item 32).

Aether compares and interpolates values through Go's `fmt.Sprint`, so values must render exactly as Go
renders them: integers plainly, floats in shortest form (exponent only below 1e-4 or from 1e21), nil as
`<nil>`, slices as `[a b]`, maps as `map[k:v]` with sorted keys.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def go_format_float(value: float) -> str:
    """A float64 as Go's `%v` renders it: shortest digits, `%e` form when the exponent is < -4 or >= 21."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    exponent = int(exponent) + len(digit_tuple) - len(digits)
    point = len(digits) + exponent  # position of the decimal point within `digits`
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 21:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_sprint(value: Any) -> str:
    """`fmt.Sprint(value)` for JSON-decoded values (strings, numbers, bools, nil, lists, maps)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_sprint(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: go_sprint(kv[0]).encode("utf-8", "surrogatepass"))
        return "map[" + " ".join(f"{go_sprint(k)}:{go_sprint(v)}" for k, v in items) + "]"
    return str(value)


def is_truthy(value: Any) -> bool:
    """Aether's truthiness: bool true, the string "true", or anything whose `%v` rendering is `true`."""
    return value is True or go_sprint(value) == "true"


_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's `%q` (`strconv.Quote`): printable runes kept, everything else escaped the way Go escapes it."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:  # Go never holds a lone surrogate: its JSON decoder made it U+FFFD
            ch, code = "\ufffd", 0xFFFD
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
