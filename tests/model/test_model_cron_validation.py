"""CronWorkflow validation (spec 1.10, last paragraph): every message verbatim, in Aether's order."""

from __future__ import annotations

from typing import Any

import pytest

from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_cron_defaults
from aether_es.model.gofmt import go_quote
from aether_es.model.loading import load_cron_workflow
from aether_es.model.validation import parse_rfc3339_ns, validate_cron_workflow

Doc = dict[str, Any]
RFC = '"2006-01-02T15:04:05Z07:00"'


def base(**spec: Any) -> Doc:
    doc: Doc = {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 * * * *",
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}],
            },
        },
    }
    doc["spec"].update(spec)
    return doc


def run(doc: Doc) -> None:
    validate_cron_workflow(fill_cron_defaults(load_cron_workflow(doc)))


def assert_invalid(doc: Doc, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        run(doc)
    assert str(info.value) == f"aether: validation error: {message}"


def test_base_is_valid() -> None:
    run(base())


def test_unsupported_api_version() -> None:
    doc = base()
    doc["apiVersion"] = "aether/v2"
    assert_invalid(doc, "unsupported apiVersion: aether/v2")


@pytest.mark.parametrize("kind", ["Workflow", "", "cronworkflow"])
def test_kind_must_be_cron_workflow(kind: str) -> None:
    doc = base()
    doc["kind"] = kind
    assert_invalid(doc, f"unsupported kind: {kind} (expected CronWorkflow)")


def test_metadata_name_required() -> None:
    doc = base()
    doc["metadata"] = {}
    assert_invalid(doc, "metadata.name is required")


def test_metadata_name_rule() -> None:
    doc = base()
    doc["metadata"]["name"] = "Nightly"
    assert_invalid(doc, 'metadata.name "Nightly" is invalid: must match DNS-1123 (^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)')
    doc["metadata"]["name"] = "n" * 64
    assert_invalid(doc, f'metadata.name "{"n" * 64}" is too long: max 63 characters')


def test_schedule_required() -> None:
    assert_invalid(base(schedule=""), "spec.schedule is required")


@pytest.mark.parametrize("schedule", ["* * * *", "0 0 * * * *", "@every 5m", "@Daily", "0\x1c0 * * *"])
def test_schedule_shape(schedule: str) -> None:
    assert_invalid(
        base(schedule=schedule),
        f"spec.schedule {go_quote(schedule)} must be a 5-field cron expression or a macro (@hourly, @daily, etc.)",
    )


@pytest.mark.parametrize(
    "schedule",
    [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
        " 1  2\t3\n4 5 ",
        "a b c d e",
    ],
)
def test_schedule_accepted(schedule: str) -> None:
    run(base(schedule=schedule))


def test_timezone_unknown() -> None:
    assert_invalid(base(timezone="Mars/Olympus"), 'spec.timezone "Mars/Olympus": unknown time zone Mars/Olympus')


@pytest.mark.parametrize("zone", ["../etc/passwd", "/etc/localtime", "Europe/../UTC"])
def test_timezone_invalid_location_name(zone: str) -> None:
    assert_invalid(base(timezone=zone), f'spec.timezone "{zone}": time: invalid location name')


@pytest.mark.parametrize("zone", ["UTC", "Local", "Europe/Paris", "America/New_York", "Asia/Tokyo"])
def test_timezone_accepted(zone: str) -> None:
    run(base(timezone=zone))


def test_start_at_invalid() -> None:
    assert_invalid(
        base(startAt="2024-01-01"),
        f'spec.startAt "2024-01-01": must be valid RFC3339: parsing time "2024-01-01" as {RFC}: cannot parse "" as "T"',
    )


def test_end_at_invalid() -> None:
    assert_invalid(
        base(startAt="2024-01-01T00:00:00Z", endAt="2024-02-30T00:00:00Z"),
        'spec.endAt "2024-02-30T00:00:00Z": must be valid RFC3339: parsing time "2024-02-30T00:00:00Z": '
        "day out of range",
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00Z"),
    ],
)
def test_end_must_be_after_start(start: str, end: str) -> None:
    assert_invalid(base(startAt=start, endAt=end), "spec.endAt must be after spec.startAt")


def test_start_and_end_accepted() -> None:
    run(base(startAt="2024-01-01T00:00:00Z", endAt="2024-01-01T00:00:00.5Z"))
    run(base(startAt="2024-01-01T00:00:00Z"))
    run(base(endAt="2000-01-01T00:00:00Z"))


def test_zero_time_start_skips_the_order_check() -> None:
    run(base(startAt="0001-01-01T00:00:00Z", endAt="0001-01-01T00:00:00Z"))


def test_concurrency_policy() -> None:
    assert_invalid(base(concurrencyPolicy="allow"), 'spec.concurrencyPolicy "allow": must be Allow, Forbid, or Replace')
    for policy in ("Allow", "Forbid", "Replace"):
        run(base(concurrencyPolicy=policy))


@pytest.mark.parametrize("seconds", [0, -5])
def test_starting_deadline_seconds(seconds: int) -> None:
    assert_invalid(base(startingDeadlineSeconds=seconds), "spec.startingDeadlineSeconds must be > 0")


def test_starting_deadline_seconds_null_or_positive() -> None:
    run(base(startingDeadlineSeconds=None))
    run(base(startingDeadlineSeconds=30))


def test_successful_history_limit() -> None:
    assert_invalid(base(successfulJobsHistoryLimit=-1), "spec.successfulJobsHistoryLimit must be >= 0")


def test_failed_history_limit() -> None:
    assert_invalid(base(failedJobsHistoryLimit=-1), "spec.failedJobsHistoryLimit must be >= 0")


def test_workflow_spec_prefixed() -> None:
    doc = base()
    doc["spec"]["workflowSpec"]["entrypoint"] = ""
    assert_invalid(doc, "spec.workflowSpec: spec.entrypoint is required")


def test_workflow_spec_missing_entirely() -> None:
    doc = base()
    del doc["spec"]["workflowSpec"]
    assert_invalid(doc, "spec.workflowSpec: spec.entrypoint is required")


def test_workflow_spec_hook_message_prefixed() -> None:
    doc = base()
    doc["spec"]["workflowSpec"]["hooks"] = {"onExit": {"template": "ghost"}}
    assert_invalid(doc, 'spec.workflowSpec: spec.hooks: onExit references unknown template "ghost"')


def test_workflow_spec_defaults_filled_even_without_cron_defaults() -> None:
    """ValidateCronWorkflow fills the workflow defaults itself: maxNestedDepth 0 means 3, not 10."""
    doc = base()
    doc["spec"]["workflowSpec"] = {
        "entrypoint": "d0",
        "templates": [{"dag": {"name": f"d{i}", "tasks": [{"name": "n", "template": f"d{i + 1}"}]}} for i in range(4)]
        + [{"task": {"name": "d4", "executor": {"type": "echo"}}}],
    }
    with pytest.raises(ValidationError) as info:
        validate_cron_workflow(load_cron_workflow(doc))
    assert info.value.detail == "spec.workflowSpec: template nesting depth exceeds maximum (3)"


def test_raw_negative_history_limit_without_defaults() -> None:
    with pytest.raises(ValidationError) as info:
        validate_cron_workflow(load_cron_workflow(base(failedJobsHistoryLimit=-3)))
    assert info.value.detail == "spec.failedJobsHistoryLimit must be >= 0"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"apiVersion": "x", "kind": "Workflow"}, "unsupported apiVersion: x"),
        ({"kind": "Workflow", "metadata": {}}, "unsupported kind: Workflow (expected CronWorkflow)"),
        ({"metadata": {}, "spec": {"schedule": ""}}, "metadata.name is required"),
        ({"spec": {"schedule": "", "timezone": "Nowhere"}}, "spec.schedule is required"),
        ({"spec": {"schedule": "x", "timezone": "Nowhere"}}, 'spec.schedule "x" must be a 5-field'),
        (
            {"spec": {"timezone": "Nowhere", "startAt": "x"}},
            'spec.timezone "Nowhere": unknown time zone Nowhere',
        ),
        ({"spec": {"startAt": "x", "endAt": "y"}}, 'spec.startAt "x": must be valid RFC3339'),
        (
            {
                "spec": {
                    "startAt": "2024-01-02T00:00:00Z",
                    "endAt": "2024-01-01T00:00:00Z",
                    "concurrencyPolicy": "x",
                }
            },
            "spec.endAt must be after spec.startAt",
        ),
        ({"spec": {"concurrencyPolicy": "x", "startingDeadlineSeconds": 0}}, 'spec.concurrencyPolicy "x"'),
        (
            {"spec": {"startingDeadlineSeconds": 0, "successfulJobsHistoryLimit": -1}},
            "spec.startingDeadlineSeconds must be > 0",
        ),
        (
            {"spec": {"successfulJobsHistoryLimit": -1, "failedJobsHistoryLimit": -1}},
            "spec.successfulJobsHistoryLimit must be >= 0",
        ),
        (
            {"spec": {"failedJobsHistoryLimit": -1, "workflowSpec": {}}},
            "spec.failedJobsHistoryLimit must be >= 0",
        ),
    ],
)
def test_first_error_wins(doc: Doc, message: str) -> None:
    full = base()
    for key, value in doc.items():
        if key == "spec":
            full["spec"].update(value)
        else:
            full[key] = value
    with pytest.raises(ValidationError) as info:
        run(full)
    assert info.value.detail.startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'parsing time "" as ' + RFC + ': cannot parse "" as "2006"'),
        (
            "20x4-01-01T00:00:00Z",
            f'parsing time "20x4-01-01T00:00:00Z" as {RFC}: cannot parse "20x4-01-01T00:00:00Z" as "2006"',
        ),
        (
            "2024-1-01T00:00:00Z",
            f'parsing time "2024-1-01T00:00:00Z" as {RFC}: cannot parse "1-01T00:00:00Z" as "01"',
        ),
        (
            "2024-01-01 00:00:00Z",
            f'parsing time "2024-01-01 00:00:00Z" as {RFC}: cannot parse " 00:00:00Z" as "T"',
        ),
        ("2024-01-01T00:00:00", f'parsing time "2024-01-01T00:00:00" as {RFC}: cannot parse "" as "Z07:00"'),
        (
            "2024-01-01T00:00:00+0100",
            f'parsing time "2024-01-01T00:00:00+0100" as {RFC}: cannot parse "+0100" as "Z07:00"',
        ),
        ("2024-13-01T00:00:00Z", 'parsing time "2024-13-01T00:00:00Z": month out of range'),
        ("2024-01-01T24:00:00Z", 'parsing time "2024-01-01T24:00:00Z": hour out of range'),
        ("2024-01-01T00:60:00Z", 'parsing time "2024-01-01T00:60:00Z": minute out of range'),
        ("2024-01-01T00:00:60Z", 'parsing time "2024-01-01T00:00:60Z": second out of range'),
        ("2023-02-29T00:00:00Z", 'parsing time "2023-02-29T00:00:00Z": day out of range'),
        (
            "2024-01-01T00:00:00+25:00",
            'parsing time "2024-01-01T00:00:00+25:00": time zone offset hour out of range',
        ),
        ("2024-01-01T00:00:00Z ", 'parsing time "2024-01-01T00:00:00Z ": extra text: " "'),
        ("\u00e9", f'parsing time "\\xc3\\xa9" as {RFC}: cannot parse "\\xc3\\xa9" as "2006"'),
    ],
)
def test_rfc3339_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rfc3339_ns(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-01-01T00:00:00Z", 1_704_067_200 * 10**9),
        ("2024-01-01T05:30:00.25+05:30", 1_704_067_200 * 10**9 + 250_000_000),
        ("2024-02-29T00:00:00-01:00", 1_709_168_400 * 10**9),
        ("2024-01-01T00:00:00,5Z", 1_704_067_200 * 10**9 + 500_000_000),
        ("2024-01-01T0:00:00Z", 1_704_067_200 * 10**9),
        ("0000-01-01T00:00:00Z", -62_167_219_200 * 10**9),
    ],
)
def test_rfc3339_values(text: str, nanos: int) -> None:
    assert parse_rfc3339_ns(text) == nanos
