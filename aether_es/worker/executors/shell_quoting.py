"""Values into a shell command as data: each placeholder becomes a quoted reference to an environment variable.

The command text is the author's; a value never becomes part of it. A scanner follows the author's quoting
(POSIX sh: single and double quotes, backslash escapes, `$(...)`, backquotes, `( ... )`, comments) and puts
in, where `{{inputs.parameters.NAME}}` was written, a reference that expands to exactly the value as one word:

* unquoted: `"${AETHER_INPUT_0}"` (so no word splitting or globbing, unlike a textual substitution);
* inside double quotes: `${AETHER_INPUT_0}`;
* inside single quotes: `'"${AETHER_INPUT_0}"'` (close the quotes, insert, reopen them).

A placeholder inside `$((...))` is refused: shells such as bash evaluate a variable's value there as an
expression, which can run commands. Here-documents are not followed; a placeholder in one expands in place
but any quotes around it are kept as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aether_es.engine.binding import single_placeholder
from aether_es.worker.executors.common import CodeRefused, ConfigError, as_text

VARIABLE_PREFIX = "AETHER_INPUT_"

_UNQUOTED, _SUBSHELL, _BACKQUOTE, _SINGLE, _DOUBLE, _ARITH, _ARITH_PAREN = range(7)
_WORD_START = " \t\n;&|()<>"
_DOUBLE_ESCAPES = frozenset('$`"\\\n')


def bind_values(command: str, values: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The command with each placeholder of a key in `values` replaced by a quoted variable reference, and
    the variables to set. Placeholders of other keys stay as written.

    Raises ConfigError when the command is only a placeholder (the value would choose the command), when a
    placeholder is inside `$((...))`, or when a value holds a NUL character (no environment can carry it).
    """
    if single_placeholder(command.strip()) is not None:
        raise CodeRefused(
            "shell: config.command must not be only a placeholder: values never choose the code that runs"
        )
    out: list[str] = []
    variables: dict[str, str] = {}
    names: dict[str, str] = {}
    stack = [_UNQUOTED]
    i, n = 0, len(command)
    while i < n:
        top = stack[-1]
        key, end = _placeholder_at(command, i)
        if key is not None and key in values:
            if top in (_ARITH, _ARITH_PAREN):
                raise CodeRefused(
                    f"shell: config.command: {{{{{key}}}}} inside $((...)) would be evaluated as an expression"
                )
            name = names.get(key)
            if name is None:
                name = names[key] = f"{VARIABLE_PREFIX}{len(names)}"
                variables[name] = _text(key, values[key])
            out.append(_reference(name, top))
            i = end
            continue
        c = command[i]
        step = 1
        if top == _SINGLE:
            if c == "'":
                stack.pop()
        elif top == _DOUBLE:
            if c == "\\" and command[i + 1 : i + 2] in _DOUBLE_ESCAPES:
                step = 2
            elif c == "\\":  # a backslash that escapes nothing: doubled, so a reference after it still expands
                out.append("\\\\")
                i += 1
                continue
            elif c == '"':
                stack.pop()
            else:
                step = _open_expansion(command, i, stack)
        elif top in (_ARITH, _ARITH_PAREN):
            if c == "(":
                stack.append(_ARITH_PAREN)
            elif c == ")" and top == _ARITH_PAREN:
                stack.pop()
            elif command.startswith("))", i):
                stack.pop()
                step = 2
        else:  # unquoted: at the top, inside $( ), ( ) or backquotes
            if c == "\\":
                step = 2
            elif c == "'":
                stack.append(_SINGLE)
            elif c == '"':
                stack.append(_DOUBLE)
            elif c == "#" and (i == 0 or command[i - 1] in _WORD_START):
                newline = command.find("\n", i)
                step = (newline if newline >= 0 else n) - i
            elif (c, top) in ((")", _SUBSHELL), ("`", _BACKQUOTE)):
                stack.pop()
            elif c == "(":
                stack.append(_SUBSHELL)
            else:
                step = _open_expansion(command, i, stack)
        out.append(command[i : i + step])
        i += step
    return "".join(out), variables


def _placeholder_at(command: str, i: int) -> tuple[str | None, int]:
    """The key of a placeholder starting at `i` and the index after it, else (None, i)."""
    if not command.startswith("{{", i):
        return None, i
    close = command.find("}}", i + 2)
    if close < 0:
        return None, i
    key = single_placeholder(command[i : close + 2])
    return (key, close + 2) if key is not None else (None, i)


def _open_expansion(command: str, i: int, stack: list[int]) -> int:
    """Enter `$((`, `$(` or a backquote starting at `i`; how many characters that took (1 when none)."""
    if command.startswith("$((", i):
        stack.append(_ARITH)
        return 3
    if command.startswith("$(", i):
        stack.append(_SUBSHELL)
        return 2
    if command[i] == "`":
        stack.append(_BACKQUOTE)
    return 1


def _reference(name: str, context: int) -> str:
    if context == _DOUBLE:
        return f"${{{name}}}"
    if context == _SINGLE:
        return f"'\"${{{name}}}\"'"
    return f'"${{{name}}}"'


def _text(key: str, value: Any) -> str:
    text = as_text(value)
    if "\0" in text:
        raise ConfigError(f"shell: {key} holds a NUL character, which no command can receive")
    return text
