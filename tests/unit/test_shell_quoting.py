"""Values reach a shell command as data: whatever a value holds, `sh -c` prints exactly it and runs nothing else."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aether_es.worker.executors.common import ConfigError
from aether_es.worker.executors.shell_quoting import bind_values

KEY = "inputs.parameters.p"
P = "{{inputs.parameters.p}}"

# The author's quoting around the placeholder: (command, what it prints before the value, and after it).
COMMANDS = [
    (f"printf '%s' {P}", "", ""),
    (f"printf '%s' '{P}'", "", ""),
    (f'printf "%s" "{P}"', "", ""),
    (f"( printf '%s' {P} )", "", ""),
    (f"# it's a comment {P}\nprintf '%s' {P}", "", ""),
    (f'printf \'%s\' "\\"\\{P}\\\\"', '"\\', "\\"),
    (f"printf '%s' it\\'s' {P}'", "it's ", ""),
]
# Placeholders inside command substitutions (which drop trailing newlines, so not for any value).
SUBSTITUTIONS = [
    (f"printf '%s' \"<$(printf '%s' {P})>\"", "<", ">"),
    (f"printf '%s' \"<`printf '%s' {P}`>\"", "<", ">"),
    (f"printf '%s' \"<$(printf '%s' '{P}')>\"", "<", ">"),
]

HOSTILE = [
    "'; touch pwned; '",
    '"; touch pwned; "',
    "$(touch pwned)",
    "`touch pwned`",
    "x\ntouch pwned",
    "a && touch pwned",
    "a; touch pwned",
    "*",
    "  two  words  ",
    "\\",
    "'\"'\"'",
    "{{inputs.parameters.p}}",
    "$HOME ${PATH}",
    "",
]

shell_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("'\"`$();&|\\\n\t *?{}[]#~<>!")),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    ),
    max_size=40,
)


def run(command: str, value: str, cwd: Path) -> str:
    script, variables = bind_values(command, {KEY: value})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **variables}
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, env=env, cwd=cwd, check=False)
    return done.stdout.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(("command", "before", "after"), COMMANDS + SUBSTITUTIONS)
def test_hostile_values_print_as_they_are_and_run_nothing(
    command: str, before: str, after: str, value: str, tmp_path: Path
) -> None:
    assert run(command, value, tmp_path) == before + value + after
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=80, deadline=None)
@given(value=shell_text, case=st.sampled_from(COMMANDS))
def test_any_value_is_printed_exactly_and_nothing_else_runs(value: str, case: tuple[str, str, str]) -> None:
    command, before, after = case
    with tempfile.TemporaryDirectory() as folder:
        assert run(command, value, Path(folder)) == before + value + after
        assert os.listdir(folder) == []


def test_one_variable_per_name_and_other_placeholders_stay() -> None:
    script, variables = bind_values(
        f"echo {P} {P} {{{{inputs.parameters.q}}}} {{{{workflow.name}}}}", {KEY: 1, "inputs.parameters.q": [1, "a"]}
    )
    assert script == 'echo "${AETHER_INPUT_0}" "${AETHER_INPUT_0}" "${AETHER_INPUT_1}" {{workflow.name}}'
    assert variables == {"AETHER_INPUT_0": "1", "AETHER_INPUT_1": '[1, "a"]'}  # non-strings as JSON text


@pytest.mark.parametrize(
    ("command", "cause"),
    [
        (P, "only a placeholder"),
        (f"  {{{{ {KEY} }}}} ", "only a placeholder"),
        (f"echo $(( {P} + 1 ))", r"\$\(\(\.\.\.\)\)"),
        (f'echo "$(( ({P}) ))"', r"\$\(\(\.\.\.\)\)"),
    ],
)
def test_a_value_that_would_choose_or_become_code_is_refused(command: str, cause: str) -> None:
    with pytest.raises(ConfigError, match=cause):
        bind_values(command, {KEY: "id"})


def test_a_nul_in_a_value_is_refused_naming_the_input() -> None:
    with pytest.raises(ConfigError, match=r"inputs\.parameters\.p holds a NUL"):
        bind_values(f"echo {P}", {KEY: "a\0b"})


def test_arithmetic_without_placeholders_and_after_it_is_followed() -> None:
    script, _ = bind_values(f"echo $(( (1 + 2) * 3 )) '{P}'", {KEY: "v"})
    assert script == "echo $(( (1 + 2) * 3 )) ''\"${AETHER_INPUT_0}\"''"
