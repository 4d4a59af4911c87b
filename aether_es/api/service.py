"""The request/reply API on NATS: a micro service ("aether-es") in front of an `Engine`.

Each operation listens on `<prefix>.api.v1.<operation>` in one queue group, so any number of engine processes
can serve the same prefix and NATS spreads requests among them. Each request is handled in its own task:
the micro framework calls handlers one at a time per subscription, and a slow request (a large run's view)
must not hold up the rest.

Idempotent submit: a key is hashed into the idempotency bucket and claimed with a create-only put naming a
fresh run id and the document's digest; whoever loses the claim reads the winner's run id. Both then submit
with that explicit run id, which the engine makes idempotent, so the same key gives one run under concurrent
requests, across engine processes and restarts, and a claim whose submission was interrupted is completed by
the next repeat. The key given with another document is refused as a conflict naming the run it started.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import pydantic
import pydantic_core
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from aether_es.adapters.nats.connection import LogThrottle
from aether_es.adapters.nats.layout import Layout, check_id, ensure_bucket
from aether_es.adapters.nats.value_store import NatsValueStore
from aether_es.adapters.nats.worker_registry import info_to_dict
from aether_es.api import messages as m
from aether_es.api.engines import read_engines
from aether_es.api.errors import STATUS, describe, error_reply, invalid
from aether_es.errors import (
    ConflictError,
    NotFoundError,
    NotSupportedError,
    ValidationError,
)
from aether_es.events.references import Gathering
from aether_es.history.audit import command_actor
from aether_es.model import clock
from aether_es.model import phases as ph
from aether_es.model.loading import check_document, parse_object
from aether_es.model.traps import document_warnings
from aether_es.ports.event_store import RunSummary
from aether_es.ports.idgen import IdContext
from aether_es.projections.run_state import RunState
from aether_es.runtime.engine import Engine

if TYPE_CHECKING:
    from aether_es.runtime.stack import Stack

log = logging.getLogger("aether_es.api")

T = TypeVar("T")
Page = TypeVar("Page", bound=m.Message)

SERVICE_NAME = "aether-es"
QUEUE_GROUP = "aether-es"


def _package_version() -> str:
    try:
        return version("aether-es")
    except PackageNotFoundError:
        return "0.0.0"


def parse_request(model: type[m.Message], body: bytes) -> Any:
    """The request model from a JSON body (empty means `{}`), or a ValidationError naming the bad field."""
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise invalid(None, f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid(None, f"request body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        # An unknown key first: it is usually a misspelling of the key reported missing.
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = [str(part) for part in first["loc"]]
        field = loc[0] if loc else None
        if first["type"] == "extra_forbidden":
            raise invalid(field, f"{field}: unknown field{_nearest(model, field)}") from None
        if field == "document":
            raise invalid(field, "document: must be a JSON object or a string holding one") from None
        raise invalid(field, f"{'.'.join(loc)}: {first['msg']}") from None


_FORMER = {"phase": "status", "id": "cronWorkflowID"}
"""Keys this API once took, by the name that replaced them."""


def _nearest(model: type[m.Message], field: str | None) -> str:
    """` (did you mean runID?)` for a key spelt like one the model knows or named as it once was, else ""."""
    known = [info.alias or name for name, info in model.model_fields.items()]
    folded = {key.lower(): key for key in known}
    key = field or ""
    match = folded.get(key.lower()) or next(iter(difflib.get_close_matches(key, known, 1)), None)
    if match is None and _FORMER.get(key) in known:
        match = _FORMER[key]
    return f" (did you mean {match}?)" if match else ""


def _who(request: m.Audited) -> str:
    return command_actor(request.actor)


def _checked_id(field: str, value: str) -> str:
    try:
        return check_id(field, value)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None


def _cron_id(value: str) -> str:
    return _checked_id("cronWorkflowID", value)


@dataclass(frozen=True, slots=True)
class _Cursor:
    created_at: datetime
    run_id: str


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _created(summary: RunSummary) -> datetime:
    try:
        return clock.parse_time(summary.created_at)
    except ValueError:
        return _EPOCH


def _encode_token(*parts: str | int) -> str:
    """An opaque page token holding `parts`."""
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def _decode_token(token: str, read: Callable[[Any], T]) -> T:
    """What `read` makes of a token's parts (it raises ValueError or TypeError on parts it does not expect);
    a token this API did not return is refused, naming the field."""
    try:
        return read(orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))
    except (ValueError, TypeError):
        raise invalid("pageToken", "pageToken: not a token this API returned (pass nextPageToken as is)") from None


def _run_cursor(parts: Any) -> _Cursor:
    created_at, run_id = parts
    return _Cursor(clock.parse_time(created_at), str(run_id))


def _task_place(parts: Any) -> tuple[str, int]:
    """A task page token's run id and index into the run's task runs (in creation order)."""
    run_id, index = parts
    if not isinstance(run_id, str) or type(index) is not int or index < 0:
        raise ValueError(parts)
    return run_id, index


def _time(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return clock.parse_time(value)
    except ValueError:
        raise invalid(field, f"{field}: {value!r} is not an RFC3339 time (e.g. 2025-01-02T03:04:05Z)") from None


def _phases(value: str | list[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    wanted = frozenset([value] if isinstance(value, str) else value)
    unknown = sorted(wanted - frozenset(ph.ALL_PHASES))
    if unknown:
        raise invalid("status", f"status: unknown phase {unknown[0]!r}, expected one of {', '.join(ph.ALL_PHASES)}")
    return wanted


def _in_phases(summary: RunSummary, phases: frozenset[str]) -> bool:
    """A run never is Suspended itself (Aether keeps it Running): `Suspended` finds a run with a task waiting."""
    return summary.phase in phases or (ph.SUSPENDED in phases and summary.suspended > 0)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """A list request's filters, checked (a bad one is refused before any summary is read)."""

    request: m.ListRunsRequest
    phases: frozenset[str] | None
    after: datetime | None
    before: datetime | None
    cursor: _Cursor | None

    @classmethod
    def of(cls, request: m.ListRunsRequest) -> RunFilter:
        return cls(
            request,
            _phases(request.status),
            _time("createdAfter", request.created_after),
            _time("createdBefore", request.created_before),
            _decode_token(request.page_token, _run_cursor) if request.page_token else None,
        )

    def matches(self, summary: RunSummary, created: datetime) -> bool:
        request = self.request
        return (
            (self.phases is None or _in_phases(summary, self.phases))
            and (request.name is None or summary.name == request.name)
            and (request.cron_workflow_id is None or summary.cron_id == request.cron_workflow_id)
            and all(summary.labels.get(key) == value for key, value in (request.labels or {}).items())
            and (self.after is None or created >= self.after)
            and (self.before is None or created < self.before)
            and (self.cursor is None or (created, summary.run_id) < (self.cursor.created_at, self.cursor.run_id))
        )


def list_page(summaries: list[RunSummary], where: RunFilter) -> m.ListRunsReply:
    """One page of the matching runs, newest first (ties broken by run id, so the order is total and a page
    token marks an exact place in it: pages never repeat or skip a run)."""
    matching = [(created, s) for s in summaries if where.matches(s, created := _created(s))]
    matching.sort(key=lambda item: (item[0], item[1].run_id), reverse=True)
    limit = where.request.limit
    page = matching[:limit]
    token = ""
    if len(matching) > limit:
        created, last = page[-1]
        token = _encode_token(clock.format_time(created), last.run_id)
    return m.ListRunsReply(runs=[_run_info(summary) for _, summary in page], next_page_token=token)


def task_page(
    state: RunState,
    start: int,
    limit: int,
    max_payload: int,
    reply: Callable[[list[dict[str, Any]], str], Page],
    by_reference: Gathering | None = None,
) -> Page:
    """`reply(tasks, token)` with the run's task records from the `start`th on: at most `limit` of them, and
    no more than keep the reply's JSON within `max_payload` bytes (0: no bound), so tasks with big outputs
    still fit. Only the records on the page (and the one that did not fit) are built. A record over
    `by_reference`'s inline limit carries its big values by reference (the caller stores what it gathered).
    A single record too large for any page even so is refused, naming it, rather than cut."""
    total = len(state.order)
    room = max_payload - len(reply([], _encode_token(state.run_id, total)).to_json()) if max_payload else None
    tasks: list[dict[str, Any]] = []
    for record in islice(state.task_records(start), limit):
        if room is not None:
            size = len(pydantic_core.to_json(record))
            if by_reference is not None and size > by_reference.limit:
                record = by_reference.externalise(record)
                size = len(pydantic_core.to_json(record))
            room -= size + 1  # and a comma
            if room < 0:
                if not tasks:
                    raise NotSupportedError(
                        f'task run "{record["runID"]}" of run "{state.run_id}" is {size} bytes as JSON, more than '
                        f"a reply can carry under the server's max payload of {max_payload} bytes "
                        "(`aether-es history` shows its events)"
                    )
                break
        tasks.append(record)
    end = start + len(tasks)
    return reply(tasks, _encode_token(state.run_id, end) if end < total else "")


def _digest(document: m.Document) -> str:
    """The document's identity whatever its layout: the SHA-256 of its JSON with sorted keys."""
    text = json.dumps(parse_object(document), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _run_info(summary: RunSummary) -> m.RunInfo:
    return m.RunInfo(
        run_id=summary.run_id,
        name=summary.name,
        namespace=summary.namespace,
        status=summary.phase,
        suspended_tasks=summary.suspended,
        created_at=summary.created_at,
        finished_at=summary.finished_at,
        cron_workflow_id=summary.cron_id,
        labels=dict(summary.labels),
    )


class ApiService:
    """Serves the API for `engine` on `nc`; `js` holds the idempotency bucket. `start`, then `stop`."""

    def __init__(self, engine: Engine, nc: Client, layout: Layout, js: JetStreamContext) -> None:
        self.engine = engine
        self.nc = nc
        self.layout = layout
        self.js = js
        self._values = NatsValueStore(js, layout)
        self._unavailable = LogThrottle(log, interval=10.0)
        self._service: Service | None = None
        self._keys: KeyValue | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: dict[str, Callable[[Any], Awaitable[m.Message]]] = {
            "runs.submit": self._submit,
            "runs.get": self._get,
            "runs.tasks": self._task_page,
            "runs.list": self._list,
            "runs.resume": self._resume,
            "runs.cancel": self._cancel,
            "runs.retry": self._retry,
            "runs.purge": self._purge,
            "crons.submit": self._cron_submit,
            "crons.get": self._cron_get,
            "crons.update": self._cron_update,
            "crons.delete": self._cron_delete,
            "crons.trigger": self._cron_trigger,
            "crons.suspend": self._cron_suspend,
            "crons.resume": self._cron_resume,
            "crons.list": self._cron_list,
            "workers.list": self._workers,
            "engines.list": self._engines,
        }
        assert self._handlers.keys() == m.OPERATIONS.keys()

    async def start(self) -> None:
        await ensure_bucket(self.js, self.layout.idempotency_kv_config())
        self._keys = await self.js.key_value(self.layout.idempotency_bucket)
        service = await add_service(
            self.nc,
            name=SERVICE_NAME,
            version=_package_version(),
            description="aether_es workflow engine API",
            metadata={"prefix": self.layout.prefix, "api": "v1"},
            queue_group=QUEUE_GROUP,
        )
        self._service = service
        for operation in m.OPERATIONS:
            await service.add_endpoint(
                name=operation.replace(".", "-"),
                subject=self.layout.api_subject(operation),
                handler=self._handler(operation),
            )
        await self.nc.flush()

    async def stop(self) -> None:
        """Stop taking requests, then let the ones in progress answer."""
        service, self._service = self._service, None
        if service is not None:
            await service.stop()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _handler(self, operation: str) -> Callable[[Request], Awaitable[None]]:
        async def on_request(request: Request) -> None:
            task = asyncio.create_task(self._serve(operation, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return on_request

    async def _serve(self, operation: str, request: Request) -> None:
        model, _ = m.OPERATIONS[operation]
        try:
            reply = await self._handlers[operation](parse_request(model, request.data))
            data = reply.to_json()
            limit = self.nc.max_payload
            if limit and len(data) > limit:
                raise ValueError(f"the reply is {len(data)} bytes, above the server's max payload of {limit} bytes")
        except Exception as exc:
            failure = error_reply(exc)
            if failure.error.code == "internal":
                log.error("api %s failed: %s", operation, failure.error.message, exc_info=exc)
            elif failure.error.code == "unavailable":  # NATS or the owner away for a moment: the caller may repeat
                self._unavailable.warning(operation, "api %s: %s", operation, failure.error.message)
            await self._respond_error(request, failure)
            return
        try:
            await request.respond(data)
        except Exception as exc:  # the requester is gone or the connection closed: nobody left to tell
            log.warning("api %s: reply not sent: %r", operation, exc)

    async def _respond_error(self, request: Request, failure: m.ErrorReply) -> None:
        try:
            await request.respond_error(
                STATUS[failure.error.code], failure.error.message.replace("\n", " "), data=failure.to_json()
            )
        except Exception as exc:
            log.warning("api error reply not sent: %r", exc)

    # --- runs ----------------------------------------------------------------------------------------

    @staticmethod
    def _warnings(document: m.Document, strict: bool) -> list[m.DocumentWarning]:
        """A valid document's warnings for the reply; with `strict`, a refusal naming each one instead."""
        warnings = [m.DocumentWarning(path=w.path, message=w.message) for w in document_warnings(document)]
        if strict and warnings:
            count = "1 warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
            listed = "; ".join(f"{w.path}: {w.message}" for w in warnings)
            raise invalid("document", f"refused by strict, the document has {count}: {listed}")
        return warnings

    async def _submit(self, request: m.SubmitRunRequest) -> m.SubmitRunReply:
        try:
            check_document(request.document)  # before any key is claimed
            warnings = self._warnings(request.document, request.strict)
            if request.idempotency_key is None:
                run_id = await self.engine.submit(request.document, actor=_who(request), reason=request.reason)
                reply = m.SubmitRunReply(run_id=run_id, created=True)
            else:
                reply = await self._submit_once(request, request.idempotency_key)
            reply.warnings = warnings
            return reply
        except ValidationError as exc:
            exc.field = exc.field or "document"
            raise

    async def _submit_once(self, request: m.SubmitRunRequest, key: str) -> m.SubmitRunReply:
        assert self._keys is not None
        slot = hashlib.sha256(key.encode()).hexdigest()
        candidate = self.engine.ids.generate(IdContext(workflow_kind="Workflow"))
        digest = _digest(request.document)
        run_id, claimed_digest, revision = await self._claim(slot, candidate, digest)
        if claimed_digest not in (digest, ""):
            raise ConflictError(
                f'idempotency key {key!r} already started run "{run_id}" with another document; '
                "use a new key for a new document"
            )
        created = run_id == candidate
        try:
            await self.engine.submit(request.document, run_id=run_id, actor=_who(request), reason=request.reason)
        except Exception as exc:
            # Free the key whatever the failure, unless the run was stored after all: a key left naming no run
            # would give the next submit with it `created: false` and run that submit's document.
            if created and not await self._stored(run_id):
                log.warning("submit with an idempotency key failed (%s); the key is free again", describe(exc))
                await self._keys.delete(slot, last=revision)
            raise
        return m.SubmitRunReply(run_id=run_id, created=created)

    async def _stored(self, run_id: str) -> bool:
        """Whether the run exists; True when that cannot be told (the claim then stays, as a repeat completes
        it with the run id it names)."""
        try:
            await self.engine.state(run_id)
        except NotFoundError:
            return False
        except Exception as exc:
            log.warning("run %s: cannot tell whether its submit was stored (%s)", run_id, describe(exc))
        return True

    async def _claim(self, slot: str, candidate: str, digest: str) -> tuple[str, str, int]:
        """The run id `slot` names, claiming it for `candidate` (and the document's `digest`) if it names none,
        with the claimed document's digest ("" for a claim made before digests were kept) and revision."""
        assert self._keys is not None
        while True:
            try:
                claim = orjson.dumps({"runID": candidate, "digest": digest})
                return candidate, digest, await self._keys.create(slot, claim)
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._keys.get(slot)
            except (KeyNotFoundError, KeyDeletedError):
                continue  # a claim whose document was invalid was just released: claim again
            assert entry.value is not None
            held = orjson.loads(entry.value)
            return str(held.get("runID") or held["runId"]), str(held.get("digest", "")), entry.revision or 0

    async def _get(self, request: m.GetRunRequest) -> m.GetRunReply:
        values = self._values.gathering()

        def page(state: RunState) -> m.GetRunReply:
            view = values.externalise(state.header())

            def reply(tasks: list[dict[str, Any]], token: str) -> m.GetRunReply:
                return m.GetRunReply(run={**view, "tasks": tasks}, next_task_page_token=token)

            return task_page(state, 0, m.MAX_TASK_LIMIT, self.nc.max_payload, reply, values)

        built = await self.engine.read(_checked_id("runID", request.run_id), page)
        await self._values.put(values.blobs)
        return built

    async def _task_page(self, request: m.ListTasksRequest) -> m.ListTasksReply:
        run_id = _checked_id("runID", request.run_id)
        owner, start = _decode_token(request.page_token, _task_place) if request.page_token else (run_id, 0)
        if owner != run_id:
            raise invalid("pageToken", f"pageToken: a token of run {owner!r}, not of runID {run_id!r}")
        values = self._values.gathering()

        def page(state: RunState) -> m.ListTasksReply:
            if start > len(state.order):
                raise invalid("pageToken", f"pageToken: past the {len(state.order)} task runs of run {run_id!r}")

            def reply(tasks: list[dict[str, Any]], token: str) -> m.ListTasksReply:
                return m.ListTasksReply(tasks=tasks, next_page_token=token)

            return task_page(state, start, request.limit, self.nc.max_payload, reply, values)

        built = await self.engine.read(run_id, page)
        await self._values.put(values.blobs)
        return built

    async def _list(self, request: m.ListRunsRequest) -> m.ListRunsReply:
        where = RunFilter.of(request)
        summaries = await self.engine.store.summaries()
        return await asyncio.to_thread(list_page, summaries, where)  # sorting many runs off the loop

    async def _resume(self, request: m.ResumeRunRequest) -> m.Done:
        await self.engine.resume(
            _checked_id("runID", request.run_id),
            _checked_id("taskRunID", request.task_run_id),
            request.payload,
            actor=_who(request),
            reason=request.reason,
        )
        return m.Done()

    async def _cancel(self, request: m.CancelRunRequest) -> m.Done:
        await self.engine.cancel(_checked_id("runID", request.run_id), actor=_who(request), reason=request.reason)
        return m.Done()

    async def _retry(self, request: m.RetryRunRequest) -> m.Done:
        task_run_ids = [_checked_id("taskRunIDs", task_id) for task_id in request.task_run_ids]
        run_id = _checked_id("runID", request.run_id)
        from_task = _checked_id("fromTaskRunID", request.from_task_run_id) if request.from_task_run_id else ""
        await self.engine.retry(run_id, task_run_ids, from_task=from_task, actor=_who(request), reason=request.reason)
        return m.Done()

    async def _purge(self, request: m.PurgeRunsRequest) -> m.PurgeRunsReply:
        run_ids = [_checked_id("runIDs", run_id) for run_id in request.run_ids]
        purge_id = await self.engine.purge(run_ids, archive=request.archive, actor=_who(request), reason=request.reason)
        for run_id in run_ids:  # the feed is a copy of the history: it goes too
            await self.js.purge_stream(self.layout.feed_stream, subject=self.layout.run_event_subjects(run_id))
        return m.PurgeRunsReply(purge_id=purge_id)

    # --- cron workflows ------------------------------------------------------------------------------

    async def _cron_submit(self, request: m.SubmitCronRequest) -> m.SubmitCronReply:
        crons = self.engine.cron()
        try:
            check_document(request.document)
            warnings = self._warnings(request.document, request.strict)
            return m.SubmitCronReply(
                cron_workflow_id=await crons.submit(request.document, actor=_who(request), reason=request.reason),
                warnings=warnings,
            )
        except ValidationError as exc:
            exc.field = exc.field or "document"
            raise

    async def _cron_get(self, request: m.CronIdRequest) -> m.GetCronReply:
        return m.GetCronReply(cron=await self.engine.cron().get(_cron_id(request.cron_workflow_id)))

    async def _cron_update(self, request: m.UpdateCronRequest) -> m.Done:
        crons = self.engine.cron()
        cron_id = _cron_id(request.cron_workflow_id)
        try:
            await crons.update(cron_id, request.document, actor=_who(request), reason=request.reason)
        except ValidationError as exc:
            exc.field = exc.field or "document"
            raise
        return m.Done()

    async def _cron_delete(self, request: m.CronCommandRequest) -> m.Done:
        await self.engine.cron().delete(_cron_id(request.cron_workflow_id), actor=_who(request), reason=request.reason)
        return m.Done()

    async def _cron_trigger(self, request: m.CronCommandRequest) -> m.TriggerCronReply:
        crons = self.engine.cron()
        run_id = await crons.trigger(_cron_id(request.cron_workflow_id), actor=_who(request), reason=request.reason)
        return m.TriggerCronReply(run_id=run_id)

    async def _cron_suspend(self, request: m.CronCommandRequest) -> m.Done:
        crons = self.engine.cron()
        await crons.suspend(_cron_id(request.cron_workflow_id), True, actor=_who(request), reason=request.reason)
        return m.Done()

    async def _cron_resume(self, request: m.CronCommandRequest) -> m.Done:
        crons = self.engine.cron()
        await crons.suspend(_cron_id(request.cron_workflow_id), False, actor=_who(request), reason=request.reason)
        return m.Done()

    async def _cron_list(self, _: m.Empty) -> m.ListCronsReply:
        return m.ListCronsReply(crons=await self.engine.cron().list_all())

    # --- workers -------------------------------------------------------------------------------------

    async def _workers(self, request: m.ListWorkersRequest) -> m.ListWorkersReply:
        registry = self.engine.workers
        if registry is None:
            raise NotSupportedError("WorkerRegistry not configured, use Engine(worker_registry=...)")
        if request.executor_type is None:
            workers = await registry.list_all()
        else:
            workers = await registry.list_by_executor_type(request.executor_type)
        return m.ListWorkersReply(workers=[m.WorkerView.model_validate(info_to_dict(w)) for w in workers])

    # --- engines -------------------------------------------------------------------------------------

    async def _engines(self, _: m.Empty) -> m.ListEnginesReply:
        return await read_engines(self.js, self.layout)


async def start_api(stack: Stack) -> ApiService:
    """Serve the API for a stack's engine on its connection (stop it before closing the stack)."""
    api = ApiService(stack.engine, stack.connection.nc, stack.layout, stack.connection.js)
    await api.start()
    return api
