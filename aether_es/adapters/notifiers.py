"""Hook notifiers that need no infrastructure: several notifiers at once."""

from __future__ import annotations

from aether_es.ports.notifier import HookEvent, HookNotifier


class NotifyErrors(Exception):
    """Some notifiers of a CompositeNotifier failed: `errors` in call order, messages joined by newlines."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) or type(e).__name__ for e in errors))


class CompositeNotifier:
    """Calls every notifier in order, even after one fails; then raises one NotifyErrors for all failures.

    Go's `hook.CompositeNotifier` (`errors.Join`). The first failure is also the error's `__cause__`.
    """

    def __init__(self, *notifiers: HookNotifier) -> None:
        self.notifiers = notifiers

    async def notify(self, event: HookEvent) -> None:
        errors: list[Exception] = []
        for notifier in self.notifiers:
            try:
                await notifier.notify(event)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise NotifyErrors(errors) from errors[0]
