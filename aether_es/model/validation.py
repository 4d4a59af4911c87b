"""Aether's `Validate` and `ValidateCronWorkflow`: the same checks, order and message texts.

Checks run in Aether's evaluation order and the first failure wins, because users (and the conformance
corpus) compare the exact `aether: validation error: ...` text. Validation assumes defaults were filled
first, as Aether's Submit does. Go-specific renderings the messages embed (`%q`, `strings.Fields`,
`time.Parse` and `time.LoadLocation` errors) are reproduced here rather than approximated.
"""

from __future__ import annotations

import math
import re
import zoneinfo

from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_defaults
from aether_es.model.documents import HOOK_KEYS, Backoff, CronWorkflow, Dag, Hooks, Loop, Task, Template, Workflow
from aether_es.model.durations import go_bytes, parse_duration_ns, time_quote
from aether_es.model.gofmt import go_quote

API_VERSION = "aether/v1"
NAME_MAX_LENGTH = 63
MAX_NESTING_DEPTH = 10
"""Absolute ceiling of static nesting depth; `spec.maxNestedDepth` <= 0 or above it means this value."""
AGGREGATE_STRATEGIES = ("last", "first", "list")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})

_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def validate_workflow(wf: Workflow) -> None:
    """Raise `ValidationError` with Aether's message for the first problem of a (defaulted) workflow."""
    problem = workflow_problem(wf)
    if problem is not None:
        raise ValidationError(problem)


def validate_cron_workflow(cw: CronWorkflow) -> None:
    """Raise `ValidationError` with Aether's message for the first problem of a (defaulted) cron workflow."""
    problem = cron_workflow_problem(cw)
    if problem is not None:
        raise ValidationError(problem)


def workflow_problem(wf: Workflow) -> str | None:
    """Aether's `Validate` as a value: the first message, or None when the workflow is valid."""
    if wf.api_version != API_VERSION:
        return f"unsupported apiVersion: {wf.api_version}"
    if wf.kind not in ("Workflow", "CronWorkflow"):
        return f"unsupported kind: {wf.kind}"
    problem = _metadata_name_problem(wf.metadata.name)
    if problem:
        return problem
    spec = wf.spec
    if not spec.entrypoint:
        return "spec.entrypoint is required"
    if not spec.templates:
        return "spec.templates is required"
    templates = _first_by_name(spec.templates)
    if spec.entrypoint not in templates:
        return f"entrypoint template {go_quote(spec.entrypoint)} not found in templates"
    for index, template in enumerate(spec.templates):
        problem = _template_problem(index, template, templates)
        if problem:
            return problem
    problem = _hooks_problem("spec.hooks", spec.hooks, templates)
    if problem:
        return problem
    for template in spec.templates:
        for task in template.dag.tasks if template.dag is not None else ():
            location = f"template {go_quote(template.name)} task {go_quote(task.name)} hooks"
            problem = _hooks_problem(location, task.hooks, templates)
            if problem:
                return problem
    max_depth = spec.max_nested_depth
    if max_depth <= 0 or max_depth > MAX_NESTING_DEPTH:
        max_depth = MAX_NESTING_DEPTH
    return _nesting_problem(spec.entrypoint, 0, max_depth, templates, set())


def cron_workflow_problem(cw: CronWorkflow) -> str | None:
    """Aether's `ValidateCronWorkflow` as a value: the first message, or None when valid."""
    if cw.api_version != API_VERSION:
        return f"unsupported apiVersion: {cw.api_version}"
    if cw.kind != "CronWorkflow":
        return f"unsupported kind: {cw.kind} (expected CronWorkflow)"
    problem = _metadata_name_problem(cw.metadata.name)
    if problem:
        return problem
    spec = cw.spec
    if not spec.schedule:
        return "spec.schedule is required"
    if spec.schedule not in CRON_MACROS and len(go_fields(spec.schedule)) != 5:
        return (
            f"spec.schedule {go_quote(spec.schedule)} must be a 5-field cron expression "
            "or a macro (@hourly, @daily, etc.)"
        )
    if spec.timezone:
        error = load_location_error(spec.timezone)
        if error:
            return f"spec.timezone {go_quote(spec.timezone)}: {error}"
    instants: list[int] = []
    for key, text in (("startAt", spec.start_at), ("endAt", spec.end_at)):
        instant = ZERO_TIME_NS
        if text:
            try:
                instant = parse_rfc3339_ns(text)
            except ValueError as exc:
                return f"spec.{key} {go_quote(text)}: must be valid RFC3339: {exc}"
        instants.append(instant)
    start, end = instants
    if start != ZERO_TIME_NS and end != ZERO_TIME_NS and not end > start:
        return "spec.endAt must be after spec.startAt"
    if spec.concurrency_policy and spec.concurrency_policy not in CONCURRENCY_POLICIES:
        policy = go_quote(spec.concurrency_policy)
        return f"spec.concurrencyPolicy {policy}: must be Allow, Forbid, or Replace"
    if spec.starting_deadline_seconds is not None and spec.starting_deadline_seconds <= 0:
        return "spec.startingDeadlineSeconds must be > 0"
    if spec.successful_jobs_history_limit < 0:
        return "spec.successfulJobsHistoryLimit must be >= 0"
    if spec.failed_jobs_history_limit < 0:
        return "spec.failedJobsHistoryLimit must be >= 0"
    inner = Workflow(api_version=cw.api_version, kind="Workflow", metadata=cw.metadata, spec=spec.workflow_spec)
    problem = workflow_problem(fill_defaults(inner))
    return f"spec.workflowSpec: {problem}" if problem else None


def name_problem(kind: str, name: str) -> str | None:
    """The DNS-1123 label rule (length counted in UTF-8 bytes, as Go's `len`)."""
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_LENGTH:
        return f"{kind} {go_quote(name)} is too long: max {NAME_MAX_LENGTH} characters"
    if not _NAME_RE.fullmatch(name):
        return f"{kind} {go_quote(name)} is invalid: must match DNS-1123 (^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)"
    return None


def _metadata_name_problem(name: str) -> str | None:
    return "metadata.name is required" if not name else name_problem("metadata.name", name)


def _first_by_name(templates: list[Template]) -> dict[str, Template]:
    """Aether's `FindTemplate` as a map: the first template of each name wins."""
    index: dict[str, Template] = {}
    for template in templates:
        index.setdefault(template.name, template)
    return index


def _template_problem(index: int, template: Template, templates: dict[str, Template]) -> str | None:
    name = template.name
    if not name:
        return f"template[{index}].name is required"
    problem = name_problem("template name", name)
    if problem:
        return problem
    if template.members() != 1:
        return f"template {go_quote(name)} must have exactly one of dag/task/loop"
    if template.dag is not None:
        problem = _dag_problem(template.dag, templates)
        if problem:
            return f"template {go_quote(name)}: {problem}"
    member = template.dag or template.task or template.loop
    inputs = member.inputs if member is not None else None
    for parameter in inputs.parameters if inputs is not None else ():
        problem = name_problem("parameter name", parameter.name)
        if problem:
            return f"template {go_quote(name)} inputs: {problem}"
    task = template.task
    if task is not None and task.executor is not None and not task.executor.type:
        return f"template {go_quote(name)}: executor.type is required"
    problem = _config_problem(task) if task is not None else None
    if problem:
        return f"template {go_quote(name)}: {problem}"
    if template.loop is not None:
        problem = _loop_problem(template.loop, templates)
        if problem:
            return f"template {go_quote(name)}: {problem}"
    return None


def _config_problem(task: Task) -> str | None:
    """`executor.config` reaches the worker as a JSON object (an extension: Aether drops it)."""
    config = task.executor.config if task.executor is not None else None
    if config is None or isinstance(config, dict):
        return None
    return "executor.config must be a JSON object"


def _dag_problem(dag: Dag, templates: dict[str, Template]) -> str | None:
    if not dag.tasks:
        return "dag.tasks must not be empty"
    names: set[str] = set()
    for task in dag.tasks:
        if not task.name:
            return "task.name is required"
        problem = name_problem("task name", task.name)
        if problem:
            return problem
        if task.name in names:
            return f"duplicate task name {go_quote(task.name)}"
        names.add(task.name)
    for task in dag.tasks:
        for dependency in task.dependencies:
            if dependency not in names:
                return f"task {go_quote(task.name)} depends on unknown task {go_quote(dependency)}"
        if not task.template and task.executor is None:
            return f"task {go_quote(task.name)}: either template or executor is required"
        problem = _config_problem(task)
        if problem:
            return f"task {go_quote(task.name)}: {problem}"
        if task.template and task.template not in templates:
            return f"task {go_quote(task.name)} references unknown template {go_quote(task.template)}"
        problem = _backoff_problem(task.retry.backoff if task.retry is not None else None)
        if problem:
            return f"task {go_quote(task.name)} {problem}"
    for entrypoint in dag.entrypoints:
        if entrypoint not in names:
            return f"entrypoint {go_quote(entrypoint)} references unknown task"
    return "dag contains a cycle" if has_cycle(dag) else None


def _backoff_problem(backoff: Backoff | None) -> str | None:
    """The retry backoff extension: a positive `duration`, `factor` >= 1 and `maxDuration` >= `duration`."""
    if backoff is None:
        return None
    if not backoff.duration:
        return "retry.backoff.duration is required"
    duration = parse_duration_ns(backoff.duration)
    if duration is None or duration <= 0:
        return f'retry.backoff.duration must be a positive duration such as "1s", got {go_quote(backoff.duration)}'
    if not math.isfinite(backoff.factor) or backoff.factor < 1:
        return f"retry.backoff.factor must be at least 1, got {backoff.factor:g}"
    if backoff.max_duration:
        longest = parse_duration_ns(backoff.max_duration)
        if longest is None or longest <= 0:
            return (
                'retry.backoff.maxDuration must be a positive duration such as "1m", '
                f"got {go_quote(backoff.max_duration)}"
            )
        if longest < duration:
            return (
                f"retry.backoff.maxDuration {go_quote(backoff.max_duration)} must not be shorter than "
                f"retry.backoff.duration {go_quote(backoff.duration)}"
            )
    return None


def has_cycle(dag: Dag) -> bool:
    """Whether the dependency edges of a DAG contain a cycle (iterative DFS: no recursion limit)."""
    downstream: dict[str, list[str]] = {}
    for task in dag.tasks:
        for dependency in task.dependencies:
            downstream.setdefault(dependency, []).append(task.name)
    done: set[str] = set()
    on_path: set[str] = set()
    for task in dag.tasks:
        if task.name in done or task.name in on_path:
            continue
        on_path.add(task.name)
        stack = [(task.name, iter(downstream.get(task.name, ())))]
        while stack:
            node, successors = stack[-1]
            for successor in successors:
                if successor in on_path:
                    return True
                if successor not in done:
                    on_path.add(successor)
                    stack.append((successor, iter(downstream.get(successor, ()))))
                    break
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)
    return False


def _loop_problem(loop: Loop, templates: dict[str, Template]) -> str | None:
    if not loop.body:
        return "loop.body is required"
    if loop.body not in templates:
        return f"loop.body references unknown template {go_quote(loop.body)}"
    modes = sum((bool(loop.repeat_condition), bool(loop.items), bool(loop.items_from)))
    if modes == 0:
        return "loop must specify one of repeatCondition/items/itemsFrom"
    if modes > 1:
        return "loop must specify only one of repeatCondition/items/itemsFrom"
    if loop.repeat_condition and loop.max_iterations <= 0:
        return "loop.maxIterations is required when using repeatCondition"
    if loop.concurrency > 0 and loop.repeat_condition:
        return "loop.concurrency is not allowed with repeatCondition (serial only)"
    strategy = loop.aggregate.strategy if loop.aggregate is not None else ""
    if strategy and strategy not in AGGREGATE_STRATEGIES:
        quoted = go_quote(strategy)
        return f"loop.aggregate.strategy {quoted} is not supported; valid values: last, first, list"
    return None


def _hooks_problem(location: str, hooks: Hooks | None, templates: dict[str, Template]) -> str | None:
    """Every declared hook must name an existing *task* template (hooks are fire-and-forget leaves)."""
    if hooks is None:
        return None
    for key in HOOK_KEYS:
        name = hooks.template_for(key)
        if not name:
            continue
        template = templates.get(name)
        if template is None:
            return f"{location}: {key} references unknown template {go_quote(name)}"
        if template.task is None:
            return f"{location}: {key} template {go_quote(name)} must be a task template (not dag or loop)"
    return None


def _nesting_problem(
    name: str, depth: int, max_depth: int, templates: dict[str, Template], cleared: set[tuple[str, int]]
) -> str | None:
    """Aether's static depth walk (inline DAG nodes count as a level); `cleared` memoises passed subtrees."""
    if depth > max_depth:
        return f"template nesting depth exceeds maximum ({max_depth})"
    template = templates.get(name)
    if template is None or (name, depth) in cleared:
        return None
    children = [task.template for task in template.dag.tasks] if template.dag is not None else []
    if template.loop is not None and template.loop.body:
        children.append(template.loop.body)
    for child in children:
        problem = _nesting_problem(child, depth + 1, max_depth, templates, cleared)
        if problem:
            return problem
    cleared.add((name, depth))
    return None


# --- Go renderings embedded in the messages ------------------------------------------------------------

_GO_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def go_fields(text: str) -> list[str]:
    """Go's `strings.Fields`: split on `unicode.IsSpace`, which is narrower than Python's `str.split()`."""
    return [part for part in _GO_SPACE.split(text) if part]


def load_location_error(name: str) -> str | None:
    """The error text of Go's `time.LoadLocation(name)`, or None when Go would load the zone."""
    if name in ("", "UTC", "Local"):
        return None
    if ".." in name or name[0] in "/\\":
        return "time: invalid location name"
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:  # not found, bad key, unreadable: Go reports these as an unknown zone
        return "unknown time zone " + name
    return None


RFC3339 = "2006-01-02T15:04:05Z07:00"
ZERO_TIME_NS = -62_135_596_800 * 1_000_000_000
"""Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix nanoseconds; `IsZero()` compares with it."""
_LAYOUT_CHUNKS = (
    ("", "2006"),
    ("-", "01"),
    ("-", "02"),
    ("T", "15"),
    (":", "04"),
    (":", "05"),
    ("", "Z07:00"),
)  # (literal prefix, layout element) pairs of RFC3339, in the order Go's parser walks them


class _Bad(Exception):
    """Go's `errBad`: the value does not fit the layout element being parsed."""


def parse_rfc3339_ns(text: str) -> int:
    """Go's `time.Parse(time.RFC3339, text)` as Unix nanoseconds; ValueError carries Go's exact text."""
    original = go_bytes(text)
    value = original
    numbers = dict.fromkeys(("2006", "01", "02", "15", "04", "05"), 0)
    nanos = offset = 0

    def failure(layout_elem: str, value_elem: bytes) -> ValueError:
        return ValueError(
            f"parsing time {time_quote(original)} as {time_quote(RFC3339.encode())}: "
            f"cannot parse {time_quote(value_elem)} as {time_quote(layout_elem.encode())}"
        )

    def message(text: str) -> ValueError:
        return ValueError(f"parsing time {time_quote(original)}{text}")

    for prefix, element in _LAYOUT_CHUNKS:
        if not value.startswith(prefix.encode()):
            raise failure(prefix, value)
        value = value[len(prefix) :]
        hold = value
        range_error = ""
        try:
            if element == "2006":
                if len(value) < 4 or not value[:4].isdigit():
                    raise _Bad
                numbers[element], value = int(value[:4]), value[4:]
            elif element == "Z07:00":
                offset, value, range_error = _zone_offset(value)
            else:
                numbers[element], value = _getnum(value, fixed=element != "15")
                range_error = _range_error(element, numbers[element])
                if element == "05" and not range_error and value[:1] in (b".", b",") and _digit(value, 1):
                    end = 2
                    while _digit(value, end):
                        end += 1
                    kept = min(end, 10)
                    nanos, value = int(value[1:kept]) * 10 ** (10 - kept), value[end:]
        except _Bad:
            raise failure(element, hold) from None
        if range_error:
            raise message(f": {range_error} out of range")
    if value:
        raise message(f": extra text: {time_quote(value)}")
    year, month, day = numbers["2006"], numbers["01"], numbers["02"]
    if day < 1 or day > _days_in(month, year):
        raise message(": day out of range")
    seconds = _days_from_civil(year, month, day) * 86400 + numbers["15"] * 3600 + numbers["04"] * 60
    return (seconds + numbers["05"] - offset) * 1_000_000_000 + nanos


def _digit(value: bytes, i: int) -> bool:
    return i < len(value) and 0x30 <= value[i] <= 0x39


def _getnum(value: bytes, fixed: bool) -> tuple[int, bytes]:
    """Go's `getnum`: one or two digits (exactly two when `fixed`)."""
    if not _digit(value, 0):
        raise _Bad
    if not _digit(value, 1):
        if fixed:
            raise _Bad
        return value[0] - 0x30, value[1:]
    return (value[0] - 0x30) * 10 + value[1] - 0x30, value[2:]


def _range_error(element: str, number: int) -> str:
    if element == "01":
        return "" if 1 <= number <= 12 else "month"
    limit = {"15": ("hour", 24), "04": ("minute", 60), "05": ("second", 60)}.get(element)
    return limit[0] if limit is not None and number >= limit[1] else ""


def _zone_offset(value: bytes) -> tuple[int, bytes, str]:
    """The `Z07:00` element: `Z` or `±hh:mm`; Go tests ranges with `>` and lets a range error win."""
    if value[:1] == b"Z":
        return 0, value[1:], ""
    if len(value) < 6 or value[3:4] != b":":
        raise _Bad
    sign, rest = value[:1], value[6:]
    hours = minutes = 0
    bad = False
    try:
        hours = _getnum(value[1:3], fixed=True)[0]
        minutes = _getnum(value[4:6], fixed=True)[0]
    except _Bad:
        bad = True
    range_error = ""
    if hours > 24:
        range_error = "time zone offset hour"
    if minutes > 60:
        range_error = "time zone offset minute"
    if range_error:
        return 0, rest, range_error
    if bad or sign not in (b"+", b"-"):
        raise _Bad
    seconds = (hours * 60 + minutes) * 60
    return (-seconds if sign == b"-" else seconds), rest, ""


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01, proleptic Gregorian (year 0 included, which `datetime` cannot hold)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468
