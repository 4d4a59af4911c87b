"""What a worker reports is scrubbed of each secret as written and in the encodings commands print it in."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from aether_es.ports.wire import ResultArtifact, TaskAssignment, TaskResult, WireParameter
from aether_es.worker.redaction import REDACTED, redact

SECRET = "s3cr3t/Token+value?&=ü"
RAW = SECRET.encode()


def assignment(*secrets: str) -> TaskAssignment:
    inputs = [WireParameter(name=f"s{i}", value=value, secret=True) for i, value in enumerate(secrets)]
    inputs.append(WireParameter(name="plain", value="public"))
    return TaskAssignment(
        task_run_id="r-1", workflow_run_id="r", task_name="t", executor_type="shell", attempt=1, inputs=inputs
    )


def scrubbed(text: str, *secrets: str) -> str:
    result = TaskResult(parameters=[WireParameter(name="out", value=text)])
    value = redact(result, assignment(*(secrets or (SECRET,)))).parameters[0].value
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        SECRET.upper(),
        SECRET.lower(),
        base64.b64encode(RAW).decode(),
        base64.b64encode(RAW).decode().rstrip("="),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),
        RAW.hex(),
        RAW.hex().upper(),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
    ],
)
def test_each_form_of_a_secret_is_scrubbed(form: str) -> None:
    assert form != "public"
    assert scrubbed(f"before {form} after") == f"before {REDACTED} after"


def test_message_keys_lists_and_artifacts_are_scrubbed_and_plain_values_kept() -> None:
    encoded = base64.b64encode(RAW).decode()
    result = TaskResult(
        message=f"failed with {SECRET.upper()}",
        parameters=[WireParameter(name="out", value={encoded: [RAW.hex(), "public"]})],
        artifacts=[ResultArtifact(name="a", path=f"/tmp/{quote(SECRET, safe='')}")],
    )
    clean = redact(result, assignment(SECRET))
    assert clean.message == f"failed with {REDACTED}"
    assert clean.parameters[0].value == {REDACTED: [REDACTED, "public"]}
    assert clean.artifacts[0].path == f"/tmp/{REDACTED}"


def test_overlapping_secrets_scrub_fully_longest_first() -> None:
    assert scrubbed("key=abcdef-long", "abcdef", "abcdef-long") == f"key={REDACTED}"


def test_a_short_secret_is_scrubbed_as_written_in_any_case_but_not_its_encodings() -> None:
    assert scrubbed("ab AB 6162 YWI=", "ab") == f"{REDACTED} {REDACTED} 6162 YWI="


def test_no_secret_leaves_the_result_as_it_is() -> None:
    result = TaskResult(message="hello", parameters=[WireParameter(name="out", value="hello")])
    assert redact(result, assignment()) is result
