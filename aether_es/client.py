"""`aether_es.Client`: the request/reply API from Python, typed, with Aether's errors raised as exceptions.

A thin layer over the NATS subjects in docs/api.md: anything here can be done with a plain NATS client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as Nats
from nats.micro.request import ERROR_CODE_HEADER

from aether_es.adapters.nats.connection import NatsConnection, seed_urls
from aether_es.adapters.nats.layout import Layout
from aether_es.api import messages as m
from aether_es.api.errors import CODES
from aether_es.errors import (
    AetherError,
    ApiError,
)
from aether_es.model import clock


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A task run reaching a phase (its creation included), with the run's `done/total` right then."""

    task_run_id: str
    path: str
    """Its name from the run's root, as `main/score[2]`."""
    phase: str
    progress: str


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """Where a followed run stands after a batch of its commits, and the phase changes in that batch."""

    phase: str
    message: str
    progress: str
    changes: list[TaskChange]


RunPage = m.ListRunsReply
"""A page of runs: `runs` (RunInfo, newest first) and `next_page_token` ("" on the last page)."""

Submitted = m.SubmitRunReply
"""A submission's `run_id`, and `created` (false when its idempotency key had already started the run)."""

_ERRORS: dict[str, type[AetherError]] = {code: kind for kind, code in CODES.items()}


def raise_error(detail: m.ErrorDetail) -> None:
    """Raise the aether_es error an error reply stands for (its text exactly the reply's message)."""
    cls = _ERRORS.get(detail.code)
    if cls is None:
        raise ApiError(detail.code, detail.message, detail.field)
    prefix = f"aether: {cls.kind}: "
    error = cls(detail.message[len(prefix) :] if detail.message.startswith(prefix) else detail.message)
    error.field = detail.field
    raise error


class Client:
    """An async client of one engine system (identified by its layout prefix).

    `await Client.connect("nats://...")`, or `async with await Client.connect(...) as client:`. Given an
    existing connection the client borrows it and `close` leaves it open. `actor` names who issues the
    commands (recorded as `user:<actor>` with their events); each command takes a `reason`.
    """

    def __init__(
        self, nc: Nats, *, prefix: str = "aether", timeout: float = 5.0, owned: bool = False, actor: str = ""
    ) -> None:
        self.nc = nc
        self.layout = Layout(prefix=prefix)
        self.timeout = timeout
        self.actor = actor
        self._owned = owned

    @classmethod
    async def connect(
        cls,
        target: str | Nats | NatsConnection,
        *,
        prefix: str = "aether",
        timeout: float = 5.0,
        actor: str = "",
        **options: Any,
    ) -> Client:
        """Connect to a NATS URL, or a cluster's comma-separated (`options` go to `nats.connect`), or use a
        connection the caller owns."""
        if isinstance(target, NatsConnection):
            return cls(target.nc, prefix=prefix, timeout=timeout, actor=actor)
        if isinstance(target, Nats):
            return cls(target, prefix=prefix, timeout=timeout, actor=actor)
        nc = await nats.connect(seed_urls(target), name="aether-es-client", **options)
        return cls(nc, prefix=prefix, timeout=timeout, owned=True, actor=actor)

    async def close(self) -> None:
        if self._owned and not self.nc.is_closed:
            await self.nc.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def call(self, operation: str, request: m.Message) -> Any:
        """One request: the reply model of `operation`, or the error it stands for raised.

        Requests are checked by the engine, not here, so every client in any language gets the same errors.
        """
        _, reply_model = m.OPERATIONS[operation]
        subject = self.layout.api_subject(operation)
        try:
            msg = await self.nc.request(subject, request.to_json(), timeout=self.timeout)
        except nats.errors.NoRespondersError:
            raise self._unavailable(subject, "nothing listens on it") from None
        except (nats.errors.TimeoutError, TimeoutError):
            raise self._unavailable(subject, f"no reply within {self.timeout:g} s") from None
        if (msg.headers or {}).get(ERROR_CODE_HEADER):
            try:
                detail = m.ErrorReply.model_validate_json(msg.data).error
            except ValueError:
                headers = msg.headers or {}
                raise ApiError("internal", headers.get("Nats-Service-Error", "aether: unexplained error")) from None
            raise_error(detail)
        return reply_model.model_validate_json(msg.data)

    def _unavailable(self, subject: str, why: str) -> ApiError:
        return ApiError(
            "unavailable",
            f"aether: unavailable: no engine serves the API on prefix {self.layout.prefix!r} ({subject}: {why})",
        )

    # --- runs ----------------------------------------------------------------------------------------

    async def submit(
        self,
        document: Mapping[str, Any] | str | bytes,
        idempotency_key: str | None = None,
        *,
        reason: str = "",
        strict: bool = False,
    ) -> str:
        """Start a workflow run; returns its id. With a key, repeating the call returns the same id. With
        `strict`, a document with warnings is refused (ValidationError naming each one's path)."""
        return (await self.submit_info(document, idempotency_key, reason=reason, strict=strict)).run_id

    async def submit_info(
        self,
        document: Mapping[str, Any] | str | bytes,
        idempotency_key: str | None = None,
        *,
        reason: str = "",
        strict: bool = False,
    ) -> Submitted:
        """`submit`, also saying whether this call created the run, and the document's warnings."""
        request = m.SubmitRunRequest.model_construct(
            document=_document(document),
            idempotency_key=idempotency_key,
            actor=self.actor,
            reason=reason,
            strict=strict,
        )
        reply: Submitted = await self.call("runs.submit", request)
        return reply

    async def get(self, run_id: str) -> dict[str, Any]:
        """The run's WorkflowExecution view, with every task run: those that do not fit in its reply are read
        page by page after it (so a live run's later pages may be newer than its status)."""
        reply: m.GetRunReply = await self.call("runs.get", m.GetRunRequest.model_construct(run_id=run_id))
        view, token = reply.run, reply.next_task_page_token
        while token:
            page = await self.task_page(run_id, limit=m.MAX_TASK_LIMIT, page_token=token)
            view["tasks"].extend(page.tasks)
            token = page.next_page_token
        return view

    async def task_page(
        self, run_id: str, *, limit: int = m.DEFAULT_TASK_LIMIT, page_token: str = ""
    ) -> m.ListTasksReply:
        """One page of the run's task records in creation order, at most `limit` (fewer when they fill a
        reply); pass `next_page_token` back as `page_token` for the next one ("" starts at the first)."""
        request = m.ListTasksRequest.model_construct(run_id=run_id, limit=limit, page_token=page_token)
        page: m.ListTasksReply = await self.call("runs.tasks", request)
        return page

    async def tasks(self, run_id: str, *, page_size: int = m.DEFAULT_TASK_LIMIT) -> AsyncIterator[dict[str, Any]]:
        """Every task record of the run in creation order, fetched page by page as the caller consumes them."""
        token = ""
        while True:
            page = await self.task_page(run_id, limit=page_size, page_token=token)
            for task in page.tasks:
                yield task
            token = page.next_page_token
            if not token:
                return

    async def follow(self, run_id: str) -> AsyncIterator[RunUpdate]:
        """The run as it moves, from its history (which needs read access to the history stream): an update
        per batch of commits read, the first with everything so far, the last once the run has ended."""
        from aether_es.adapters.nats.run_follower import follow_run  # the codec, for callers that follow

        async with contextlib.aclosing(follow_run(self.nc, self.layout, run_id)) as steps:
            async for progress, transitions in steps:
                state = progress.state
                assert state is not None
                changes = [TaskChange(t.task.id, progress.path(t.task), t.phase, str(t.progress)) for t in transitions]
                yield RunUpdate(state.phase, state.message, str(progress.progress), changes)

    async def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Follow the run to its end and return its whole view (on timeout, the view as it is then)."""
        from aether_es.adapters.nats.run_follower import follow_until  # the codec, for callers that follow

        progress = await follow_until(self.nc, self.layout, run_id, timeout)
        assert progress.state is not None
        return progress.state.to_dict()

    async def resume(
        self, run_id: str, task_run_id: str, payload: Mapping[str, Any] | None = None, *, reason: str = ""
    ) -> None:
        request = m.ResumeRunRequest.model_construct(
            run_id=run_id,
            task_run_id=task_run_id,
            payload=dict(payload) if payload is not None else None,
            actor=self.actor,
            reason=reason,
        )
        await self.call("runs.resume", request)

    async def cancel(self, run_id: str, *, reason: str = "") -> None:
        request = m.CancelRunRequest.model_construct(run_id=run_id, actor=self.actor, reason=reason)
        await self.call("runs.cancel", request)

    async def retry(
        self, run_id: str, task_run_ids: Sequence[str] = (), *, from_task: str = "", reason: str = ""
    ) -> None:
        """Run a finished run's failed task runs (all, or these) again in the same history; with `from_task`,
        that task run and every DAG node that depends on it."""
        request = m.RetryRunRequest.model_construct(
            run_id=run_id,
            task_run_ids=list(task_run_ids),
            from_task_run_id=from_task,
            actor=self.actor,
            reason=reason,
        )
        await self.call("runs.retry", request)

    async def purge(self, run_ids: Sequence[str], *, archive: str = "", reason: str = "") -> str:
        """Remove finished runs from the log (retention, recorded); returns the retention record's id."""
        request = m.PurgeRunsRequest.model_construct(
            run_ids=list(run_ids), archive=archive, actor=self.actor, reason=reason
        )
        reply: m.PurgeRunsReply = await self.call("runs.purge", request)
        return reply.purge_id

    async def runs(
        self,
        *,
        status: str | list[str] | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        cron_workflow_id: str | None = None,
        created_after: str | datetime | None = None,
        created_before: str | datetime | None = None,
        page_size: int = m.DEFAULT_LIST_LIMIT,
    ) -> AsyncIterator[m.RunInfo]:
        """Every matching run, newest first, fetched page by page (`status="Suspended"`: the runs with a task
        waiting to be resumed)."""
        token = ""
        while True:
            page = await self.list(
                status=status,
                name=name,
                labels=labels,
                cron_workflow_id=cron_workflow_id,
                created_after=created_after,
                created_before=created_before,
                limit=page_size,
                page_token=token,
            )
            for run in page.runs:
                yield run
            token = page.next_page_token
            if not token:
                return

    # --- cron workflows ------------------------------------------------------------------------------

    async def cron_submit(
        self, document: Mapping[str, Any] | str | bytes, *, reason: str = "", strict: bool = False
    ) -> str:
        """Create a CronWorkflow; returns its id. With `strict`, a document with warnings is refused."""
        return (await self.cron_submit_info(document, reason=reason, strict=strict)).cron_workflow_id

    async def cron_submit_info(
        self, document: Mapping[str, Any] | str | bytes, *, reason: str = "", strict: bool = False
    ) -> m.SubmitCronReply:
        """`cron_submit`, also giving the document's warnings."""
        request = m.SubmitCronRequest.model_construct(
            document=_document(document), actor=self.actor, reason=reason, strict=strict
        )
        reply: m.SubmitCronReply = await self.call("crons.submit", request)
        return reply

    async def cron_get(self, cron_id: str) -> dict[str, Any]:
        """The CronWorkflow's view, with the views of its runs."""
        request = m.CronIdRequest.model_construct(cron_workflow_id=cron_id)
        reply: m.GetCronReply = await self.call("crons.get", request)
        return reply.cron

    async def cron_update(self, cron_id: str, document: Mapping[str, Any] | str | bytes, *, reason: str = "") -> None:
        request = m.UpdateCronRequest.model_construct(
            cron_workflow_id=cron_id, document=_document(document), actor=self.actor, reason=reason
        )
        await self.call("crons.update", request)

    async def cron_delete(self, cron_id: str, *, reason: str = "") -> None:
        """Stop the cron workflow for good (its runs are kept); a deleted one is not found."""
        await self.call("crons.delete", self._cron_command(cron_id, reason))

    async def cron_trigger(self, cron_id: str, *, reason: str = "") -> str:
        """Start a run of the cron workflow now, outside its schedule (even while suspended); returns its id."""
        reply: m.TriggerCronReply = await self.call("crons.trigger", self._cron_command(cron_id, reason))
        return reply.run_id

    async def cron_suspend(self, cron_id: str, *, reason: str = "") -> None:
        """Stop scheduling it until `cron_resume` (refused when it is suspended already)."""
        await self.call("crons.suspend", self._cron_command(cron_id, reason))

    async def cron_resume(self, cron_id: str, *, reason: str = "") -> None:
        """Schedule a suspended cron workflow again (refused when it is not suspended)."""
        await self.call("crons.resume", self._cron_command(cron_id, reason))

    def _cron_command(self, cron_id: str, reason: str) -> m.CronCommandRequest:
        return m.CronCommandRequest.model_construct(cron_workflow_id=cron_id, actor=self.actor, reason=reason)

    async def cron_list(self) -> list[dict[str, Any]]:
        reply: m.ListCronsReply = await self.call("crons.list", m.Empty())
        return reply.crons

    # --- workers -------------------------------------------------------------------------------------

    async def workers(self, executor_type: str | None = None) -> list[m.WorkerView]:
        """The live workers (only those serving `executor_type`, when given)."""
        request = m.ListWorkersRequest.model_construct(executor_type=executor_type)
        reply: m.ListWorkersReply = await self.call("workers.list", request)
        return reply.workers

    async def engines(self) -> m.ListEnginesReply:
        """The live engines, what each holds, and the system's partition count."""
        reply: m.ListEnginesReply = await self.call("engines.list", m.Empty())
        return reply

    async def list(
        self,
        *,
        status: str | list[str] | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        cron_workflow_id: str | None = None,
        created_after: str | datetime | None = None,
        created_before: str | datetime | None = None,
        limit: int = m.DEFAULT_LIST_LIMIT,
        page_token: str = "",
    ) -> RunPage:
        """One page of runs, newest first; pass `next_page_token` back as `page_token` for the next one.

        (Defined last: a method named `list` would shadow the builtin in the annotations after it.)
        """
        request = m.ListRunsRequest.model_construct(
            status=status,
            name=name,
            labels=dict(labels) if labels is not None else None,
            cron_workflow_id=cron_workflow_id,
            created_after=_rfc3339(created_after),
            created_before=_rfc3339(created_before),
            limit=limit,
            page_token=page_token or None,
        )
        page: RunPage = await self.call("runs.list", request)
        return page


def _rfc3339(moment: str | datetime | None) -> str | None:
    return clock.format_time(moment) if isinstance(moment, datetime) else moment


def _document(document: Mapping[str, Any] | str | bytes) -> m.Document:
    if isinstance(document, bytes):
        return document.decode()
    return document if isinstance(document, str) else dict(document)
