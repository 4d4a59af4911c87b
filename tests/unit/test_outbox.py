"""The outbox's items: what a commit carries round-trips with stable ids, and a refused notification becomes
an error report instead of holding back what follows it."""

from __future__ import annotations

from aether_es.adapters.recording import RecordingErrorSink
from aether_es.engine.effects import Notify, ReportError
from aether_es.ports.error_sink import ErrorReport, Severity
from aether_es.ports.notifier import HookEvent
from aether_es.runtime.outbox import OutboxDelivery, decode_outbox, encode_outbox

EVENT = HookEvent("onStart", "workflow", "run-1", "notify", workflow_name="wf", context={"phase": "Running"})
REPORT = ErrorReport("bind.x", "no value", Severity.WARNING, "run-1", "run-1-2")


class Refusing:
    async def notify(self, event: HookEvent) -> None:
        raise ConnectionError("listener gone")


def test_items_round_trip_with_ids_made_of_the_commit_and_their_place() -> None:
    items = encode_outbox([Notify(EVENT), ReportError(REPORT)])
    notify, report = decode_outbox("run-1:7:abc", items)
    assert isinstance(notify, Notify) and isinstance(report, ReportError)
    assert notify.event.id == "run-1:7:abc/0" and report.report.id == "run-1:7:abc/1"
    assert notify.event.context == {"phase": "Running"} and report.report.severity == Severity.WARNING


def test_an_unreadable_item_is_skipped_and_the_others_kept() -> None:
    items = [{"hook": {"nonsense": 1}}, *encode_outbox([ReportError(REPORT)])]
    (kept,) = decode_outbox("c", items)
    assert isinstance(kept, ReportError) and kept.report.id == "c/1"


async def test_a_refused_notification_is_reported_and_the_rest_carried_out() -> None:
    sink = RecordingErrorSink()
    (carried, reported) = decode_outbox("c", encode_outbox([Notify(EVENT), ReportError(REPORT)]))
    await OutboxDelivery(Refusing(), sink.on_error).deliver([carried, reported])
    refusal, report = sink.reports
    assert refusal.operation == "hook.onStart" and refusal.message == "listener gone" and refusal.id == "c/0/refused"
    assert report.operation == "bind.x" and report.id == "c/1"


async def test_sent_at_once_a_refusal_has_no_id() -> None:
    sink = RecordingErrorSink()
    await OutboxDelivery(Refusing(), sink.on_error).deliver([Notify(EVENT)])
    (refusal,) = sink.reports
    assert refusal.operation == "hook.onStart" and refusal.id == ""
