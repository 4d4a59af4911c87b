"""Running a conformance corpus (`workflows/*.json` + `assertions/*.json`) on a real engine on NATS.

It reproduces the reference harness: echo as the only executor, the simple evaluator, `system.*` and
`deploy.*` variables, orchestrated resume/cancel once a task suspends, and a per-case deadline. Cases run
concurrently on one engine; each checks only its own run.
"""

from __future__ import annotations

import asyncio
import fnmatch
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from aether_es.adapters.cron_croniter import ManualCronScheduler
from aether_es.adapters.recording import RecordingErrorSink, RecordingNotifier
from aether_es.adapters.vars_sources import StaticSource, SystemSource
from aether_es.conformance.checks import check_cron, check_workflow
from aether_es.conformance.compare import first_difference
from aether_es.conformance.hook_checks import check_hooks
from aether_es.errors import AetherError
from aether_es.model import phases as ph
from aether_es.model.durations import parse_go_duration_strict
from aether_es.runtime.engine import Engine
from aether_es.runtime.stack import StackOptions, open_stack

Settle = Callable[[], Awaitable[None]]
"""Returns once every notification committed so far has been carried out (hooks leave through the outbox)."""

DEPLOY_VARS = {"cluster": "prod-cluster", "region": "ap-east-1"}


@dataclass(frozen=True)
class Case:
    name: str
    workflow: Path
    assertion: Path | None
    derived: bool = False


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        note = " (derived assertion)" if self.case.derived else ""
        head = f"{status} {self.case.name}{note} [{self.seconds:.2f}s]"
        return head if self.passed else head + ": " + "; ".join(self.failures)


class CorpusError(Exception):
    """The directory is not a conformance corpus."""


def discover(directory: Path, only: str | None = None) -> list[Case]:
    """Every `workflows/*.json` with its assertion (`assertions/`, else `assertions-derived/`)."""
    workflows = directory / "workflows"
    if not workflows.is_dir():
        raise CorpusError(f"{directory}: no workflows/ folder")
    cases = []
    for path in sorted(workflows.glob("*.json")):
        if only and not fnmatch.fnmatch(path.stem, only) and not fnmatch.fnmatch(path.name, only):
            continue
        assertion = directory / "assertions" / path.name
        derived = directory / "assertions-derived" / path.name
        if assertion.exists():
            cases.append(Case(path.stem, path, assertion))
        elif derived.exists():
            cases.append(Case(path.stem, path, derived, derived=True))
        else:
            cases.append(Case(path.stem, path, None))
    return cases


async def run_corpus(
    directory: Path,
    only: str | None = None,
    nats_url: str | None = None,
    deadline: float = 10.0,
    concurrency: int = 8,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    cases = discover(directory, only)
    notifier, errors = RecordingNotifier(), RecordingErrorSink()
    with tempfile.TemporaryDirectory(prefix="aether-conformance-") as tmp:
        stack = await open_stack(
            StackOptions(
                nats_url=nats_url,
                state_dir=Path(tmp),
                prefix=f"conf{int(time.time() * 1000) % 10**9}",
                workers=max(4, concurrency),
                vars_sources=[SystemSource(), StaticSource("deploy", DEPLOY_VARS)],
                notifier=notifier,
                error_sink=errors,
                cron_scheduler=ManualCronScheduler(),
            )
        )
        relay = stack.relay

        async def settle() -> None:
            if relay is not None:
                await relay.caught_up(deadline)

        try:
            gate = asyncio.Semaphore(concurrency)

            async def one(case: Case) -> CaseResult:
                async with gate:
                    result = await run_case(stack.engine, case, notifier, errors, deadline, settle)
                if on_result is not None:
                    on_result(result)
                return result

            return list(await asyncio.gather(*(one(case) for case in cases)))
        finally:
            await stack.close()


async def run_case(
    engine: Engine,
    case: Case,
    notifier: RecordingNotifier,
    errors: RecordingErrorSink,
    deadline: float,
    settle: Settle,
) -> CaseResult:
    result = CaseResult(case)
    began = time.monotonic()
    try:
        document = orjson.loads(case.workflow.read_bytes())
        if case.assertion is None:
            result.failures.append("no assertion file")
            return result
        assertion = orjson.loads(case.assertion.read_bytes())
        if isinstance(document, dict) and document.get("kind") == "CronWorkflow":
            await _run_cron(engine, document, assertion, result)
            return result
        await _run_workflow(engine, document, assertion, result, notifier, errors, deadline, settle)
    except Exception as exc:
        result.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        result.seconds = time.monotonic() - began
    return result


async def _run_workflow(
    engine: Engine,
    document: Any,
    assertion: dict[str, Any],
    result: CaseResult,
    notifier: RecordingNotifier,
    errors: RecordingErrorSink,
    deadline: float,
    settle: Settle,
) -> None:
    expected_error = assertion.get("expectSubmitError") or ""
    try:
        run_id = await engine.submit(document)
    except AetherError as exc:
        if expected_error and expected_error in str(exc):
            return
        result.failures.append(f"submit failed: {exc}")
        return
    result.run_id = run_id
    if expected_error:
        result.failures.append(f"submit succeeded, expected an error containing {expected_error!r}")
        return
    suspended_events: list[Any] | None = None
    resume_after, cancel_after = assertion.get("autoResumeAfter"), assertion.get("autoCancelAfter")
    if resume_after or cancel_after:
        suspended_events = await _orchestrate(engine, run_id, resume_after, cancel_after, notifier, deadline, settle)
    execution = await engine.wait(run_id, timeout=deadline)
    await settle()
    result.failures += check_workflow(assertion, execution)
    result.failures += check_hooks(
        result.case.name, notifier.for_run(run_id), errors.for_run(run_id), execution, suspended_events
    )
    rebuilt = (await engine.rebuild(run_id)).to_dict()
    difference = first_difference(execution, rebuilt)
    if difference is not None:
        result.failures.append(f"the view rebuilt from the event log differs from the live view at {difference}")


async def _run_cron(engine: Engine, document: Any, assertion: dict[str, Any], result: CaseResult) -> None:
    """Submit, fire by hand `cronTriggerCount` times 300 ms apart, wait 500 ms, check the runs."""
    crons = engine.cron()
    cron_id = await crons.submit(document)
    fires = assertion.get("cronTriggerCount") or 1
    for index in range(fires):
        if index:
            await asyncio.sleep(0.3)
        await crons.fire(cron_id)
    await asyncio.sleep(0.5)
    view = await crons.get(cron_id)
    result.run_id = view["status"]["lastSubmittedRunID"]
    result.failures += check_cron(assertion, view["runs"])


async def _orchestrate(
    engine: Engine,
    run_id: str,
    resume_after: str | None,
    cancel_after: str | None,
    notifier: RecordingNotifier,
    deadline: float,
    settle: Settle,
) -> list[Any] | None:
    """Once a task is Suspended, wait the configured delay, then resume it or cancel the run (once)."""
    stop_at = time.monotonic() + deadline
    while time.monotonic() < stop_at:
        state = await engine.state(run_id)
        if state.phase in ph.TERMINAL:
            return None
        suspended = next((t for t in state.order if state.tasks[t].phase == ph.SUSPENDED), None)
        if suspended is not None:
            await asyncio.sleep(parse_go_duration_strict(resume_after or cancel_after or "0s"))
            await settle()
            seen = list(notifier.for_run(run_id))
            if resume_after:
                await engine.resume(run_id, suspended, {"__resumed": True})
            else:
                await engine.cancel(run_id)
            return seen
        await asyncio.sleep(0.1)
    return None
