"""The docs and `--help` agree: every option a command's `--help` lists is in the docs (README.md or docs/*.md),
and every `aether-es <command> --option` the docs show is an option of that command."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from aether_es.cli.commands import COMMANDS
from aether_es.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = {
    path.relative_to(ROOT).as_posix(): path.read_text() for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
}
TEXT = "\n".join(DOCS.values())

_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_SPAN = re.compile(r"`([^`\n]*aether-es [^`\n]*)`")
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_BREAK = re.compile(r"\s(?:\||&&|;|#|>|<)\s|\$\(|\)")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: sub for action in actions for name, sub in action.choices.items()}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """A parser's long options and those of its subcommands, at any depth."""
    found = {option for action in parser._actions for option in action.option_strings if option.startswith("--")}
    for sub in _subcommands(parser).values():
        found |= _options(sub)
    return found - {"--help"}


def _command(name: str) -> argparse.ArgumentParser:
    return _subcommands(build_parser([name]))[name]


TOP = _options(build_parser([])) - {f"--{name}" for name in COMMANDS}


def _undocumented(options: set[str]) -> list[str]:
    return sorted(option for option in options if not re.search(rf"{option}(?![\w-])", TEXT))


def test_every_option_before_the_command_is_in_the_docs() -> None:
    assert _undocumented(TOP) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_a_command_is_in_the_docs(name: str) -> None:
    missing = _undocumented(_options(_command(name)))
    assert not missing, f"aether-es {name}: {', '.join(missing)} in --help but in no doc"


def _shown_commands() -> Iterator[tuple[str, str, str]]:
    """(doc, command, what follows it) for every `aether-es <command> ...` in a code span or a code block."""
    for doc, text in DOCS.items():
        segments = [*_SPAN.findall(_FENCE.sub("", text)), *(m.group(0) for m in _FENCE.finditer(text))]
        for segment in segments:
            for line in segment.replace("\\|", " ").splitlines():
                for shown in line.split("aether-es ")[1:]:
                    words = shown.split()
                    if words and words[0] in COMMANDS:
                        yield doc, words[0], _BREAK.split(shown, maxsplit=1)[0]


SHOWN = sorted(set(_shown_commands()))


def test_the_docs_show_commands() -> None:
    assert len({command for _, command, _ in SHOWN}) >= len(COMMANDS) - 2


@pytest.mark.parametrize(("doc", "command", "shown"), SHOWN)
def test_every_option_the_docs_show_exists(doc: str, command: str, shown: str) -> None:
    known = _options(_command(command)) | TOP | {"--help"}
    unknown = [option for option in _OPTION.findall(shown) if option not in known]
    assert not unknown, f"{doc}: `aether-es {shown.strip()}`: aether-es {command} has no {', '.join(unknown)}"
